"""The conversation a `/v1/realtime` session holds, and what it costs in input tokens.

Token rule of thumb (close enough to show whether a client bounds its context): one token per
40 ms of audio, one per 4 characters of text, instructions included. A truncated assistant item
counts only the audio up to the truncation point and no transcript, as on the real service.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

from translator_bot.audio.formats import MODEL_BYTES_PER_MS

MS_PER_AUDIO_TOKEN = 40
CHARS_PER_TEXT_TOKEN = 4

Role = Literal["user", "assistant", "system"]
Status = Literal["completed", "incomplete", "in_progress"]


def text_tokens(text: str | None) -> int:
    return -(-len(text or "") // CHARS_PER_TEXT_TOKEN)


def audio_tokens(ms: int) -> int:
    return -(-max(ms, 0) // MS_PER_AUDIO_TOKEN)


@dataclass
class Item:
    id: str
    role: Role
    modality: Literal["audio", "text"]
    text: str | None = None  # transcript (audio) or text
    audio: bytearray = field(default_factory=bytearray)  # pcm16 24 kHz mono
    truncated_ms: int | None = None
    status: Status = "completed"

    @property
    def audio_ms(self) -> int:
        return len(self.audio) // MODEL_BYTES_PER_MS

    @property
    def context_audio_ms(self) -> int:
        return self.audio_ms if self.truncated_ms is None else min(self.truncated_ms, self.audio_ms)

    def tokens(self) -> tuple[int, int]:
        """(text tokens, audio tokens) this item adds to the model's input."""
        if self.modality == "text":
            return text_tokens(self.text), 0
        # The model hears user audio, not its transcription; assistant audio comes with its transcript.
        transcript = self.text if self.role == "assistant" and self.truncated_ms is None else None
        return text_tokens(transcript), audio_tokens(self.context_audio_ms)

    def to_wire(self, *, with_audio: bool = False) -> dict[str, Any]:
        part: dict[str, Any]
        if self.modality == "text":
            part = {
                "type": "output_text" if self.role == "assistant" else "input_text",
                "text": self.text or "",
            }
        else:
            part = {"type": "output_audio" if self.role == "assistant" else "input_audio"}
            part["transcript"] = self.text
            if with_audio:
                end = (
                    len(self.audio)
                    if self.truncated_ms is None
                    else self.context_audio_ms * MODEL_BYTES_PER_MS
                )
                part["audio"] = base64.b64encode(bytes(self.audio[:end])).decode("ascii")
        return {
            "id": self.id,
            "object": "realtime.item",
            "type": "message",
            "role": self.role,
            "status": self.status,
            "content": [part],
        }


@dataclass(frozen=True)
class InputTokens:
    text: int
    audio: int

    @property
    def total(self) -> int:
        return self.text + self.audio


class Conversation:
    def __init__(self) -> None:
        self._items: list[Item] = []

    @property
    def items(self) -> list[Item]:
        return list(self._items)

    def get(self, item_id: str) -> Item | None:
        return next((item for item in self._items if item.id == item_id), None)

    def last_id(self) -> str | None:
        return self._items[-1].id if self._items else None

    def add(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert after `previous_item_id` ("root" = first, None = last); returns the id before it.

        Raises KeyError for an unknown `previous_item_id`.
        """
        if previous_item_id is None:
            before = self.last_id()
            self._items.append(item)
            return before
        if previous_item_id == "root":
            self._items.insert(0, item)
            return None
        for index, existing in enumerate(self._items):
            if existing.id == previous_item_id:
                self._items.insert(index + 1, item)
                return previous_item_id
        raise KeyError(previous_item_id)

    def delete(self, item_id: str) -> bool:
        for index, existing in enumerate(self._items):
            if existing.id == item_id:
                del self._items[index]
                return True
        return False

    def input_tokens(self, instructions: str | None) -> InputTokens:
        text, audio = text_tokens(instructions), 0
        for item in self._items:
            t, a = item.tokens()
            text += t
            audio += a
        return InputTokens(text, audio)

    def enforce_retention(
        self, instructions: str | None, budget_tokens: int, retain_ratio: float = 1.0
    ) -> list[str]:
        """Drop the oldest items once the context exceeds the budget, down to `retain_ratio` of it."""
        if self.input_tokens(instructions).total <= budget_tokens:
            return []
        keep = int(budget_tokens * min(max(retain_ratio, 0.0), 1.0))
        dropped: list[str] = []
        while len(self._items) > 1 and self.input_tokens(instructions).total > keep:
            dropped.append(self._items.pop(0).id)
        return dropped
