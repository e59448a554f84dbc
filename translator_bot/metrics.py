"""Prometheus metrics of the whole process, in one registry so `/metrics` and tests read the same numbers.

Label values are bounded (reasons, engine names, lane ids of one meeting), never free text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# audio in
AUDIO_INPUT_WARNINGS = Counter(
    "translator_audio_input_warnings",
    "Inbound audio problems that were absorbed instead of raised (malformed frames, format changes, gaps)",
    ["reason"],
    registry=REGISTRY,
)
FRAMES_IN = Counter("translator_frames_in", "Decoded frames received from the room", registry=REGISTRY)

# playout
PLAYOUT_WARNINGS = Counter(
    "translator_playout_warnings",
    "Playout input problems that were absorbed (empty/odd-length/oversized chunks)",
    ["reason"],
    registry=REGISTRY,
)
FRAMES_OUT = Counter("translator_frames_out", "20 ms frames sent to the room", registry=REGISTRY)
PLAYOUT_UNDERRUNS = Counter(
    "translator_playout_underruns",
    "Frames zero-filled because audio ran out in the middle of an utterance",
    registry=REGISTRY,
)
PLAYOUT_DROPPED_MS = Counter(
    "translator_playout_dropped_ms",
    "Milliseconds of translated audio dropped by the lag bound or by clear()",
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
ENGINE_AUDIO_DROPPED_MS = Counter(
    "translator_engine_audio_dropped_ms",
    "Input audio never sent to the model because the bounded history overflowed while disconnected",
    ["engine"],
    registry=REGISTRY,
)
ENGINE_EVENTS_DROPPED = Counter(
    "translator_engine_events_dropped",
    "Engine events dropped because the lane did not consume its bounded event queue",
    ["engine"],
    registry=REGISTRY,
)


def counter_value(counter: Counter, **labels: str) -> float:
    """Current value of a counter child, for tests and benchmarks."""
    metric = counter.labels(**labels) if labels else counter
    return float(metric._value.get())
