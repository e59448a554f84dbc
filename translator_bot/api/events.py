"""What an embedded interpreter tells its owner: typed events, and how the meeting ended.

Every event is a frozen dataclass, so handlers can keep them, compare them and match on them. The
end of a meeting is a `Result` whose `exit_code` is the one `translator-bot join` exits with.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from translator_bot.errors import (
    ExitCode,
    ProviderFatalError,
    ProviderUnavailableError,
    RoomError,
)
from translator_bot.interpreter.health import PartHealth


@dataclass(frozen=True, slots=True)
class Caption:
    """Live text of a translation as it is spoken: deltas grow `translation`, `final` closes the item.
    The same message goes to the listeners on their feed's data channel."""

    lane: str
    item_id: str
    speaker_id: str
    speaker_name: str
    listener_ids: tuple[str, ...]
    source_language: str
    target_language: str
    original: str
    translation: str
    final: bool

    @classmethod
    def from_message(cls, message: dict[str, object]) -> Caption:
        listeners = message.get("for", ())
        return cls(
            lane=str(message.get("lane", "")),
            item_id=str(message.get("item", "")),
            speaker_id=str(message.get("speaker", "")),
            speaker_name=str(message.get("speaker_name", "")),
            listener_ids=tuple(str(x) for x in listeners) if isinstance(listeners, list | tuple) else (),
            source_language=str(message.get("source_lang", "")),
            target_language=str(message.get("lang", "")),
            original=str(message.get("original", "")),
            translation=str(message.get("translation", "")),
            final=bool(message.get("final", False)),
        )


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One utterance as the transcript records it (the same object as a line of the .jsonl file).
    A later revision of the same `lane` + `item_id` replaces an earlier one."""

    lane: str
    item_id: str
    speaker_id: str
    speaker_name: str
    source_language: str
    target_language: str
    listener_ids: tuple[str, ...]
    started_at: str  # ISO 8601, UTC
    ended_at: str
    original: str
    translation: str
    revision: int

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TranscriptEntry:
        return cls(
            lane=str(record["lane"]),
            item_id=str(record["item_id"]),
            speaker_id=str(record["speaker_id"]),
            speaker_name=str(record["speaker_name"]),
            source_language=str(record["source_language"]),
            target_language=str(record["target_language"]),
            listener_ids=tuple(str(x) for x in record["listener_ids"]),
            started_at=str(record["started_at"]),
            ended_at=str(record["ended_at"]),
            original=str(record["original"]),
            translation=str(record["translation"]),
            revision=int(record["revision"]),
        )


@dataclass(frozen=True, slots=True)
class LaneStatus:
    """One open lane: `speaker_id`'s speech translated into `target_language` for `listener_ids`."""

    lane: str
    speaker_id: str
    speaker_name: str
    source_language: str
    target_language: str
    listener_ids: tuple[str, ...]
    state: str  # the model session's state: connecting, connected, reconnecting, ...


@dataclass(frozen=True, slots=True)
class LanesChanged:
    """The participants or the lanes changed: who is in the meeting, which lanes are open, and which
    lanes the lane cap (TRANSLATOR_MAX_LANES) leaves out."""

    participants: tuple[str, ...]  # participant ids, in join order
    lanes: tuple[LaneStatus, ...]
    unserved: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Health:
    """`status` is `ok`, `degraded` (interpreting, some part broken) or `not ready`; `details` is what
    the bot's /healthz serves."""

    status: str
    degraded: tuple[PartHealth, ...]
    details: dict[str, Any] = field(compare=False, hash=False)

    @property
    def ready(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class HealthChanged:
    health: Health


class EndReason(enum.Enum):
    STOPPED = "stopped"  # stop() was called, or the `async with` block was left
    MEETING_ENDED = "meeting ended"  # the room was destroyed, or nobody was left in it
    ROOM_LOST = "room lost"  # the room refused the bot or its server stayed unreachable
    PROVIDER_REFUSED = "provider refused"  # bad API key, no quota: retrying will not help
    PROVIDER_UNAVAILABLE = "provider unavailable"  # the model provider stayed unreachable: retry later
    FAILED = "failed"  # an unexpected error (a bug): see `error`


@dataclass(frozen=True, slots=True)
class Result:
    """How the meeting ended. `error` is the exception that ended it (None for a normal end)."""

    reason: EndReason
    detail: str = ""
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> ExitCode:
        """The exit code `translator-bot join` ends with for this result."""
        return end_exit_code(self.reason)

    @classmethod
    def from_error(cls, error: BaseException) -> Result:
        return cls(end_reason_of(error), str(error), error)


_EXIT_CODES = {
    EndReason.STOPPED: ExitCode.OK,
    EndReason.MEETING_ENDED: ExitCode.OK,
    EndReason.ROOM_LOST: ExitCode.ROOM,
    EndReason.PROVIDER_REFUSED: ExitCode.PROVIDER,
    EndReason.PROVIDER_UNAVAILABLE: ExitCode.PROVIDER_UNAVAILABLE,
    EndReason.FAILED: ExitCode.FAILURE,
}


def end_exit_code(reason: EndReason) -> ExitCode:
    return _EXIT_CODES[reason]


def end_reason_of(error: BaseException) -> EndReason:
    """The reason an error ended the meeting; its exit code is the error's own (errors.py)."""
    match error:
        case RoomError():
            return EndReason.ROOM_LOST
        case ProviderFatalError():
            return EndReason.PROVIDER_REFUSED
        case ProviderUnavailableError():
            return EndReason.PROVIDER_UNAVAILABLE
    return EndReason.FAILED


@dataclass(frozen=True, slots=True)
class Ended:
    """The last event: the bot has left the meeting and written its transcript."""

    result: Result


Event = Caption | TranscriptEntry | LanesChanged | HealthChanged | Ended
