"""The contract between the session supervisor and a model engine.

An engine (`realtime`, `translate`) is a protocol object: given the per-socket state it keeps and one
server event, it says what follows as a `Step`: events for the lane, client events to send on that
socket, whether the server ended the session at its time cap. It never touches a socket, a task or
the event loop; what it may read of the world (times, the input's position) arrives in `At`. That is
what makes its rules testable by feeding events and comparing lists, and lets one supervisor
(`engine.supervisor`) own every socket, task and timer for both engines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import BaseModel

from translator_bot.engine.base import EngineEvent, LaneSpec
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.lifetime import EXPIRED_CODES, is_fatal, is_retryable

log = logging.getLogger(__name__)

S = TypeVar("S")


@dataclass(frozen=True)
class Step:
    """What one server event (or a timer, or the lane) leads to."""

    events: list[EngineEvent] = field(default_factory=list)  # for the lane, in order
    sends: list[BaseModel] = field(default_factory=list)  # client events for the same socket, in order
    expired: bool = False  # the provider ended this session at its time cap
    fatal: tuple[str | None, str | None] | None = None  # (type, code) of a refusal that ends the lane

    def __add__(self, other: Step) -> Step:
        return Step(
            self.events + other.events,
            self.sends + other.sends,
            self.expired or other.expired,
            self.fatal or other.fatal,
        )


NOTHING = Step()


@dataclass(frozen=True)
class At:
    """What an engine may read of the world while it handles an event."""

    now: float  # loop time (engine timers)
    clock: Callable[[], float]  # the lane's clock, for the time stamps of speech events
    lane_id: str
    serial: int  # the socket's number in this lane (client event ids)
    origin: int  # absolute input sample that is the socket's audio time 0
    feed: AudioFeed  # the lane's input (read only)
    # The socket's audio position -> input sample, when the input it was sent skipped some (a rest);
    # None: contiguous from `origin`.
    to_input: Callable[[int], int] | None = None

    def input_sample(self, server_samples: int) -> int:
        """The input sample at `server_samples` on the socket's audio clock (a VAD event's time)."""
        return self.origin + server_samples if self.to_input is None else self.to_input(server_samples)


def error_step(error_type: str | None, code: str | None, message: str, at: At) -> Step:
    """The shared meaning of an `error` server event: fatal, the session's time cap, or neither
    (then only logged: louder when it is the provider's trouble rather than ours)."""
    if is_fatal(error_type, code):
        return Step(fatal=(error_type, code))
    if code in EXPIRED_CODES:
        return Step(expired=True)
    level = logging.WARNING if is_retryable(error_type, code) else logging.INFO
    log.log(level, "lane %s: provider error %s/%s: %s", at.lane_id, error_type, code, message[:200])
    return NOTHING


class Engine(Protocol[S]):
    """One provider protocol: configuration, audio, server events, and the rules for moving sockets."""

    name: str
    chunk_ms: int  # input audio per append

    def parse(self, raw: str | bytes) -> BaseModel:
        """One text frame from the server as the SDK's typed event (raises Unknown/MalformedEventError)."""
        ...

    def new_state(self) -> S:
        """State of a new socket (a new server-side session)."""
        ...

    def session_update(self, spec: LaneSpec, event_id: str) -> BaseModel:
        """The full configuration for `spec` (sent on every connect and spec change)."""
        ...

    def append(self, pcm: bytes) -> BaseModel:
        """The client event that sends input audio."""
        ...

    def on_server_event(self, state: S, event: BaseModel, at: At) -> Step: ...

    def on_tick(self, state: S, at: At, *, finished: bool) -> Step:
        """The socket was quiet for a while (`finished`: its reader has ended)."""
        ...

    def on_local_speech_start(self, at: At) -> Step:
        """The input gate heard speech begin (engines without server VAD report it from here)."""
        ...

    def on_cut_short(self, state: S, item_id: str, heard_samples: int) -> Step:
        """The listener heard only `heard_samples` of `item_id`, which this socket produced."""
        ...

    def owns_item(self, state: S, item_id: str) -> bool: ...

    def end_items(self, state: S, at: At) -> Step:
        """The socket is gone: end toward the lane every item it was streaming."""
        ...

    def resume_point(self, state: S, feed: AudioFeed) -> int | None:
        """Absolute sample from which a new socket must hear the input again after a drop, if any."""
        ...

    def clean_point(self, state: S, feed: AudioFeed) -> bool:
        """True when switching the input to a new socket now cuts no speech."""
        ...

    def switch_point(self, state: S, feed: AudioFeed) -> int | None:
        """At a forced recycle in mid-speech: absolute sample from which the new socket hears the input
        again, None when the old one translates what it already received (it gets no more)."""
        ...

    def has_pending_output(self, state: S) -> bool:
        """True while a retiring socket still owes output for input it received."""
        ...

    def on_retire(self, state: S, feed: AudioFeed) -> Step:
        """The socket gets no more input from now on (e.g. ask the server to flush and close)."""
        ...

    def rest_after_ms(self) -> int:
        """Quiet input the model needs after a sound before more silence can change nothing it says
        (`engine.silence_gate`)."""
        ...

    def input_settled(self, state: S, feed: AudioFeed) -> bool:
        """True when the socket owes nothing that needs more input (given enough quiet was sent)."""
        ...
