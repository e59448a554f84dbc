"""Prometheus metrics of the whole process, in one registry so `/metrics` and tests read the same numbers.

Named the Prometheus way: base units (seconds, bytes), counters end in `_total` (the client adds it),
`translator_` for the bot's own series. The registry also carries the client's standard collectors
(process CPU, memory and file descriptors, Python GC, Python version) and `translator_build_info`,
which is what dashboards and the Job's resource sizing read.
Label values are bounded (reasons, engine names, lane ids of one meeting), never free text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from translator_bot.distribution import package_version as package_version  # re-exported

REGISTRY = CollectorRegistry(auto_describe=True)
# What every Python exporter shows: process_* (CPU seconds, resident memory, open fds, start time),
# python_gc_* and python_info. The Job's requests and limits are sized from these.
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)


class _BuildInfo(Collector):
    """`translator_build_info{version=...}`, the version looked up at the first scrape rather than at
    import (see translator_bot.distribution)."""

    _NAME = "translator_build"
    _DOC = "The running translator-bot's version"

    def describe(self) -> Iterable[Metric]:
        return [InfoMetricFamily(self._NAME, self._DOC)]

    def collect(self) -> Iterable[Metric]:
        family = InfoMetricFamily(self._NAME, self._DOC)
        family.add_metric([], {"version": package_version()})
        return [family]


REGISTRY.register(_BuildInfo())

# audio in
AUDIO_INPUT_WARNINGS = Counter(
    "translator_audio_input_warnings",
    "Inbound audio problems that were absorbed instead of raised (malformed frames, format changes, gaps)",
    ["reason"],
    registry=REGISTRY,
)
FRAMES_IN = Counter("translator_frames_in", "Decoded frames received from the room", registry=REGISTRY)
AUDIO_INPUT_PRESUMED_SILENCE = Counter(
    "translator_audio_input_presumed_silence_seconds",
    "Silence handed to the lanes for a sender whose frames stopped coming (Opus DTX, a muted microphone)",
    registry=REGISTRY,
)

# playout
PLAYOUT_WARNINGS = Counter(
    "translator_playout_warnings",
    "Playout input problems that were absorbed (empty/odd-length/oversized chunks)",
    ["reason"],
    registry=REGISTRY,
)
FRAMES_OUT = Counter(
    "translator_frames_out",
    "Opus packets sent to the room (one per 20 ms; one per 400 ms on an idle feed with DTX)",
    registry=REGISTRY,
)
PLAYOUT_UNDERRUNS = Counter(
    "translator_playout_underruns",
    "Frames zero-filled because audio ran out in the middle of an utterance",
    registry=REGISTRY,
)
PLAYOUT_DROPPED_SECONDS = Counter(
    "translator_playout_dropped_seconds",
    "Seconds of translated audio dropped by the lag bound or by clear()",
    ["reason"],
    registry=REGISTRY,
)
PLAYOUT_QUEUE_LAG = Histogram(
    "translator_playout_queue_lag_seconds",
    "Audio queued ahead of the playout clock when a chunk arrives",
    buckets=(0.02, 0.06, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
    registry=REGISTRY,
)

# engine
ENGINE_UNKNOWN_EVENTS = Counter(
    "translator_engine_unknown_events",
    "Server events that were unknown or malformed (logged, skipped)",
    ["engine", "reason"],
    registry=REGISTRY,
)
ENGINE_RECONNECTS = Counter(
    "translator_engine_reconnects",
    "Model sessions re-opened after a drop or recycle",
    ["engine", "reason"],
    registry=REGISTRY,
)
ENGINE_TOKENS = Counter(
    "translator_engine_tokens", "Tokens reported by response.done", ["lane", "kind"], registry=REGISTRY
)
LANES = Gauge("translator_lanes", "Open interpretation lanes", registry=REGISTRY)
LANES_UNSERVED = Gauge(
    "translator_lanes_unserved",
    "Lanes the meeting needs but TRANSLATOR_MAX_LANES leaves closed (earliest-joined are served first)",
    registry=REGISTRY,
)
LANE_RESTARTS = Counter(
    "translator_lane_restarts",
    "Lanes restarted after their task crashed or their session ended",
    registry=REGISTRY,
)
INPUT_RESTARTS = Counter(
    "translator_input_restarts", "Participant audio pumps restarted after a crash", registry=REGISTRY
)
FRAMES_IGNORED = Counter(
    "translator_frames_ignored",
    "Decoded frames read and discarded: a participant's extra audio streams, or during a pump restart",
    ["reason"],
    registry=REGISTRY,
)
FEED_FAILURES = Counter(
    "translator_feed_failures",
    "The bot's own feeds refused by the room (publisher limit) or taken away (kicked, unpublished, failed)",
    ["reason"],
    registry=REGISTRY,
)
TRANSLATION_LATENCY = Histogram(
    "translator_translation_latency_seconds",
    "From the end of a source utterance to the first translated audio of it",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0),
    registry=REGISTRY,
)


# room (Janus VideoRoom client)
ROOM_MALFORMED_EVENTS = Counter(
    "translator_room_malformed_events",
    "Messages from the room server that were malformed or unexpected (logged, skipped)",
    ["reason"],
    registry=REGISTRY,
)
ROOM_METADATA_WARNINGS = Counter(
    "translator_room_metadata_warnings",
    "Participant metadata that could not be used (unknown language, malformed description), default used",
    ["source"],
    registry=REGISTRY,
)
ROOM_SUBSCRIPTIONS = Gauge(
    "translator_room_subscriptions", "Remote audio feeds subscribed", registry=REGISTRY
)
ROOM_SUBSCRIBE_FAILURES = Counter(
    "translator_room_subscribe_failures",
    "Remote feeds that could not be subscribed",
    ["reason"],
    registry=REGISTRY,
)


# engine clients (input history and lane event queue)
ENGINE_AUDIO_DROPPED_SECONDS = Counter(
    "translator_engine_audio_dropped_seconds",
    "Input audio (seconds) never sent to the model: the bounded history overflowed while disconnected",
    ["engine"],
    registry=REGISTRY,
)
ENGINE_EVENTS_DROPPED = Counter(
    "translator_engine_events_dropped",
    "Engine events dropped because the lane did not consume its bounded event queue",
    ["engine"],
    registry=REGISTRY,
)


TOKEN_KINDS = ("input", "output", "cached")


def forget_lane(lane: str) -> None:
    """Remove a closed lane's labelled series, so lanes coming and going do not grow /metrics."""
    for kind in TOKEN_KINDS:
        with contextlib.suppress(KeyError):
            ENGINE_TOKENS.remove(lane, kind)


def counter_value(counter: Counter, **labels: str) -> float:
    """Current value of a counter child, for tests and benchmarks."""
    metric = counter.labels(**labels) if labels else counter
    return float(metric._value.get())
