"""What a lane sees of a model session: the lane's spec, the events it yields, and the session interface.

Both engines (`translate`, `realtime`) implement `EngineSession`; the lane code never touches the wire
protocol. Audio in and out is always 24 kHz mono signed 16-bit little-endian.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Union

from translator_bot.languages import Language

if TYPE_CHECKING:
    from translator_bot.audio.vad import SharedChunk

Clock = Callable[[], float]


@dataclass(frozen=True)
class LaneSpec:
    """One direction of interpretation: what `speaker_name` says, rendered in `target` for `listener_name`."""

    lane_id: str
    speaker_name: str
    source: Language | None  # None: unknown, the model detects it
    listener_name: str
    target: Language


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # clock() when the start was reported


@dataclass(frozen=True)
class SpeechStopped:
    at: float


@dataclass(frozen=True)
class TranslatedAudio:
    item_id: str
    pcm: bytes  # 24 kHz mono s16le; never an all-zero heartbeat chunk


@dataclass(frozen=True)
class TranslationDone:
    item_id: str  # no more audio will come for this item


@dataclass(frozen=True)
class SourceTranscript:
    item_id: str
    text: str
    final: bool  # False: a delta to append; True: the whole text of the item


@dataclass(frozen=True)
class TranslationTranscript:
    item_id: str
    text: str
    final: bool


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    # The audio part of each (the rest is text); audio tokens cost several times text tokens.
    input_audio_tokens: int = 0
    cached_audio_tokens: int = 0
    output_audio_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


EngineEvent = Union[  # noqa: UP007 (a runtime alias used in isinstance-free matching)
    SpeechStarted,
    SpeechStopped,
    TranslatedAudio,
    TranslationDone,
    SourceTranscript,
    TranslationTranscript,
    Usage,
]


class EngineState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"  # the provider cannot be reached; reconnecting with backoff
    CLOSED = "closed"


@dataclass
class Outage:
    """The lane has had no working model session since `since` (monotonic clock; `since_wall`: epoch
    seconds for people), for the last known `reason`. Ends when a session proves healthy again."""

    since: float
    since_wall: float
    reason: str
    attempts: int = 0  # failed connection attempts so far


class EngineSession(abc.ABC):
    """One model session per lane, kept alive across drops and provider session caps.

    `send_audio` and the `update_*` methods are plain calls that never block and never raise; the
    session applies them when it can. `events()` is meant to be consumed by exactly one task.
    """

    reconnects: int
    usage_total: Usage
    audio_sent_samples: int = 0  # 24 kHz input samples sent to the model (duration-priced engines)
    state: EngineState
    outage: Outage | None = None

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and configure (retrying while the provider is unreachable); raises
        ProviderFatalError on a bad key or no quota, ProviderUnavailableError after a too long outage."""

    @abc.abstractmethod
    def send_audio(self, pcm: bytes, shared: SharedChunk | None = None) -> None:
        """Queue 24 kHz mono s16le audio of any size. `shared`: `pcm` as other detectors of the same
        audio read it (`audio.vad.SharedChunk`), whose frame powers the session may reuse."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[EngineEvent]:
        """Events until `aclose()`; raises a ProviderError if the session dies for good."""

    @abc.abstractmethod
    def update_spec(self, spec: LaneSpec) -> None:
        """New names or target language; sent now if connected, else on connect."""

    def set_target_language(self, lang: Language) -> None:
        spec = self.spec
        self.update_spec(LaneSpec(spec.lane_id, spec.speaker_name, spec.source, spec.listener_name, lang))

    @property
    @abc.abstractmethod
    def spec(self) -> LaneSpec: ...

    @abc.abstractmethod
    def report_cut_short(self, item_id: str, heard_samples: int) -> None:
        """The listener heard only the first `heard_samples` of `item_id` (the playout cut it short):
        make the model's context match what was heard."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...
