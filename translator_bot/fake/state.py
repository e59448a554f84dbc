"""What the fake server did, for tests to assert on, and the faults tests can arm.

Everything here is plain data mutated from the event loop only; `FakeState.snapshot()` is what
`GET /_fake/state` returns.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from translator_bot.fake.pacing import StreamPace

EndpointName = Literal["realtime", "translations"]
DropScope = Literal["next", "all"]


@dataclass
class TruncateRecord:
    item_id: str
    audio_end_ms: int
    item_audio_ms: int | None  # None when the item does not exist or holds no assistant audio
    accepted: bool


@dataclass
class ErrorRecord:
    type: str
    code: str | None
    message: str
    event_id: str | None  # the client event that caused it, when there is one


@dataclass
class ViolationRecord:
    """A client event that failed strict validation against the SDK's models."""

    event_type: str | None
    reason: str


@dataclass
class SessionRecord:
    id: str
    endpoint: EndpointName
    model: str
    path: str
    # Which credential header came ("bearer", "api-key"), and the OpenAI-Organization and
    # OpenAI-Project headers; never a credential's value.
    auth: str = "bearer"
    organization: str | None = None
    project: str | None = None
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    close_reason: str | None = None
    target_language: str | None = None
    audio_ms_received: int = 0
    appends_received: int = 0  # input audio events (a client that rests through silence sends fewer)
    events_received: int = 0
    recognised: list[str] = field(default_factory=list)  # utterance ids heard, in order
    unrecognised: int = 0
    same_language: int = 0  # recognised speech already in the target language
    truncates: list[TruncateRecord] = field(default_factory=list)
    errors_sent: list[ErrorRecord] = field(default_factory=list)
    contract_violations: list[ViolationRecord] = field(default_factory=list)
    input_tokens: list[int] = field(default_factory=list)  # per response.done, in order
    responses_cancelled: int = 0
    items_dropped_by_retention: int = 0
    heartbeats_sent: int = 0
    # The most a translation audio chunk was sent after its real-time due time (a starved event loop)
    output_late_ms: int = 0
    # Per translated sentence: from finding its end to its first audio (recognition, the wait for
    # the previous translation and the speaker's pause, first_audio_delay_ms)
    translation_waits_ms: list[int] = field(default_factory=list)
    # Monotonic times (the loop's clock) at which a turn's or sentence's end was found, and at which
    # the first translated audio of each answer left: where a latency benchmark splits the input
    # side (transport, appends, turn detection) from the model and from the output side.
    turn_ends_at: list[float] = field(default_factory=list)
    first_audio_at: list[float] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.closed_at is None

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["live"] = self.live
        return data


@dataclass
class DropFault:
    scope: DropScope
    after_audio_ms: int | None  # None: drop at once (live sessions) or right after connect (next)
    after_output_ms: int | None = None  # drop once this much more translated audio was sent (mid-response)


@dataclass
class FaultConfig:
    """Armed faults. Mutated by the control API or directly by tests through `FakeRealtimeServer.faults`."""

    reject_auth: bool = False
    # The organization and project "the key" belongs to (the `key_scope` control): a handshake whose
    # OpenAI-Organization / OpenAI-Project header names another is refused. None: any is accepted.
    key_organization: str | None = None
    key_project: str | None = None
    quota_exceeded: bool = False
    first_audio_delay_ms: int = 0
    session_max_seconds: float = 3600.0
    pending_drop_next: DropFault | None = None  # armed for the next session to open
    pending_malformed: int = 0  # malformed events owed to the next session to open
    stream_pace: StreamPace | None = None  # realtime responses at this pace, with jitter (None: fast)
    pace_rng: random.Random = field(default_factory=random.Random)  # seeded by the stream_pace control
    # Appended to every translation's transcript. The real model can end a delta with half a
    # surrogate pair (a token boundary inside an emoji), which JSON carries as a lone "\ud83d".
    transcript_suffix: str = ""


@dataclass
class FakeState:
    sessions: list[SessionRecord] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)  # bugs in the fake itself: must stay empty

    @property
    def opened(self) -> int:
        return len(self.sessions)

    @property
    def closed(self) -> int:
        return sum(1 for s in self.sessions if not s.live)

    def live_sessions(self) -> list[SessionRecord]:
        return [s for s in self.sessions if s.live]

    def session(self, session_id: str) -> SessionRecord:
        for record in self.sessions:
            if record.id == session_id:
                return record
        raise KeyError(session_id)

    def all_violations(self) -> list[ViolationRecord]:
        return [v for s in self.sessions for v in s.contract_violations]

    def snapshot(self) -> dict[str, Any]:
        return {
            "sessions_opened": self.opened,
            "sessions_closed": self.closed,
            "internal_errors": list(self.internal_errors),
            "sessions": [s.snapshot() for s in self.sessions],
        }


@dataclass(frozen=True)
class FakeOptions:
    """How the fake paces and sizes what it sends (fixed for the server's lifetime)."""

    retention_tokens: int = 32_000  # context budget for truncation "auto" (the model's window)
    realtime_chunk_ms: int = 100
    realtime_speed: float = 4.0  # the real service streams responses faster than real time
    translation_chunk_ms: int = 200
    translation_speed: float = 1.0  # translate output follows the input it consumes
    heartbeat_ms: int = 1000  # all-zero output chunks while a translation session is idle (0: off)
    transcript_delay_ms: int = 50  # input transcription finishes a little after the commit
