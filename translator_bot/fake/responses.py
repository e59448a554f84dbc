"""Pure pieces of a `/v1/realtime` response: its state, its wire form with usage, the rate limits
event, and the session's truncation (retention) setting applied to the conversation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.fake.conversation import Conversation, Item, audio_tokens, text_tokens

_PCM = {"type": "audio/pcm", "rate": MODEL_RATE}


@dataclass
class ActiveResponse:
    id: str
    source_item_id: str | None
    conversation: bool  # False for out-of-band responses (conversation "none")
    modalities: list[str]
    metadata: dict[str, Any] | None
    input_tokens: int
    input_text_tokens: int
    input_audio_tokens: int
    task: asyncio.Task[None] | None = None
    item: Item | None = None  # set once the output item has been announced
    part_open: bool = False
    finishing: bool = False  # the response is sending its own closing events: cancel must not
    sent_text: list[str] = field(default_factory=list)

    @property
    def transcript(self) -> str:
        return "".join(self.sent_text)


def response_wire(
    active: ActiveResponse,
    session: dict[str, Any],
    conversation_id: str,
    status: str,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    """The `response` object of `response.created` / `response.done` (usage once it has ended)."""
    audio_out = session["audio"]["output"]
    output_audio = output_text = 0
    if active.item is not None:
        output_audio = audio_tokens(active.item.audio_ms)
        output_text = text_tokens(active.transcript)
    output_tokens = output_audio + output_text
    wire: dict[str, Any] = {
        "id": active.id,
        "object": "realtime.response",
        "status": status,
        "status_details": details,
        "output": [active.item.to_wire()] if active.item is not None else [],
        "conversation_id": conversation_id if active.conversation else None,
        "output_modalities": active.modalities,
        "max_output_tokens": session.get("max_output_tokens", "inf"),
        "audio": {"output": {"format": audio_out.get("format") or _PCM, "voice": audio_out.get("voice")}},
        "metadata": active.metadata,
        "usage": None,
    }
    if status != "in_progress":
        wire["usage"] = {
            "total_tokens": active.input_tokens + output_tokens,
            "input_tokens": active.input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {
                "text_tokens": active.input_text_tokens,
                "audio_tokens": active.input_audio_tokens,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
        }
    return wire


def rate_limits_event(input_tokens: int) -> dict[str, Any]:
    return {
        "type": "rate_limits.updated",
        "rate_limits": [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 800_000, "remaining": 800_000 - input_tokens, "reset_seconds": 0.5},
        ],
    }


def apply_truncation(
    conversation: Conversation, session: dict[str, Any], budget: int, instructions: str | None
) -> list[str]:
    """Honour the session's `truncation`: "disabled" keeps everything; "auto" and `retention_ratio`
    drop the oldest items once the context exceeds the budget. Returns the dropped item ids."""
    setting = session.get("truncation") or "auto"
    if setting == "disabled":
        return []
    if isinstance(setting, dict):
        limit = (setting.get("token_limits") or {}).get("post_instructions")
        if limit:
            budget = int(limit) + text_tokens(instructions)
        return conversation.enforce_retention(
            instructions, budget, float(setting.get("retention_ratio", 1.0))
        )
    return conversation.enforce_retention(instructions, budget)
