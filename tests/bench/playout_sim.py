"""A model's translations arriving at a playout track, on a simulated clock.

Arrival model: the fake server's `stream_pace` schedule itself (`fake.pacing.DeltaSchedule`). A
translation of D seconds is cut into `delta_ms` deltas; delta k is due `k * delta_ms / rtf` after the
response starts and is delivered after a further random delay of 0..jitter_ms. A WebSocket is an
ordered stream, so a delta never overtakes the one before it (a late delta holds back the next ones).
The item is ended with its last delta. Responses of one lane do not overlap: the speaker's next
sentence starts a pause after the previous one ended, and its translation streams from then on.

The track is driven exactly as aiortc drives it: one `recv()` per 20 ms frame; arrivals due before a
frame's deadline are enqueued first, with the clock set to their arrival time. Nothing here sleeps, so
minutes of meeting run in a fraction of a second with the same decisions the track makes live.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from translator_bot.audio.clock import FakeClock
from translator_bot.audio.playout import FRAME_SECONDS, PlayoutKey, PlayoutTrack
from translator_bot.fake.pacing import DeltaSchedule, StreamPace

MODEL_RATE = 24_000


@dataclass(frozen=True)
class StreamModel:
    rtf: float  # real-time factor of the model's stream: 3.0 = three seconds of audio per second
    jitter_ms: float  # random extra delay before each delta: uniform 0..jitter_ms
    delta_ms: int = 100  # the realtime model's (and the fake's) delta length


@dataclass(frozen=True)
class Arrival:
    at: float
    item_id: str
    pcm: bytes | None  # None: the item's end


@dataclass
class ItemResult:
    item_id: str
    media_s: float
    first_arrival: float
    first_played: float | None = None
    gaps: int = 0

    @property
    def added_latency(self) -> float | None:
        return None if self.first_played is None else self.first_played - self.first_arrival


@dataclass
class SimResult:
    items: list[ItemResult] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # items cut by the lag bound or given up

    def gaps_after_first(self) -> int:
        return sum(item.gaps for item in self.items[1:])

    def played_minutes(self) -> float:
        return sum(item.media_s for item in self.items) / 60


def meeting_arrivals(
    model: StreamModel,
    rng: random.Random,
    *,
    items: int,
    durations: tuple[float, float] = (1.5, 5.0),
    pauses: tuple[float, float] = (1.0, 3.0),
    start: float = 0.5,
    lane: str = "lane",
) -> tuple[list[Arrival], dict[str, float]]:
    """Arrivals for `items` translations of one lane; also each item's media seconds."""
    arrivals: list[Arrival] = []
    media: dict[str, float] = {}
    begin = start
    for index in range(items):
        item_id = f"{lane}-{index}"
        duration = round(rng.uniform(*durations), 2)
        media[item_id] = duration
        samples = round(duration * MODEL_RATE)
        per_delta = model.delta_ms * MODEL_RATE // 1000
        schedule = DeltaSchedule(StreamPace(model.rtf, model.jitter_ms), rng, begin)
        delivered = begin
        for offset in range(0, samples, per_delta):
            size = min(per_delta, samples - offset)
            delivered = schedule.next_send_at(size / MODEL_RATE)
            pcm = np.full(size, 3000, dtype="<i2").tobytes()
            arrivals.append(Arrival(delivered, item_id, pcm))
        arrivals.append(Arrival(delivered, item_id, None))
        begin = begin + max(duration, duration / model.rtf) + rng.uniform(*pauses)
    return arrivals, media


def _key(item_id: str) -> PlayoutKey:
    return PlayoutKey("lane", item_id)


async def simulate(
    track: PlayoutTrack, clock: FakeClock, arrivals: list[Arrival], media: dict[str, float]
) -> SimResult:
    """Play `arrivals` through `track` (built on `clock`, a FakeClock at 0) until all is played."""
    results: dict[str, ItemResult] = {}
    pending = sorted(arrivals, key=lambda a: a.at)  # stable: keeps each item's order
    last = pending[-1].at if pending else 0.0
    tail = sum(media.values()) + 5.0  # enough frames to play everything that may still be queued
    index = 0
    frame = 0
    while frame * FRAME_SECONDS <= last + tail:
        deadline = frame * FRAME_SECONDS
        while index < len(pending) and pending[index].at <= deadline:
            arrival = pending[index]
            clock.set(arrival.at)
            if arrival.pcm is None:
                track.end_item(_key(arrival.item_id))
            else:
                if arrival.item_id not in results:
                    results[arrival.item_id] = ItemResult(arrival.item_id, media[arrival.item_id], arrival.at)
                track.enqueue(arrival.pcm, _key(arrival.item_id))
            index += 1
        await track.recv()
        for result in results.values():
            if result.first_played is None and track.played_samples(_key(result.item_id)) > 0:
                result.first_played = deadline
        frame += 1
        if index == len(pending) and track.queued_ms() == 0 and deadline > last + 1.0:
            break
    for result in results.values():
        result.gaps = track.gaps(_key(result.item_id))
    return SimResult(list(results.values()))


async def run(
    model: StreamModel, seed: int, *, adaptive: bool, items: int = 20, hold_ms: float = 0
) -> SimResult:
    """One lane's translations through a track set up as the realtime engine's feeds are (60 ms
    cushion, no fixed hold, the default 8 s lag bound); `hold_ms=80` as the translate engine's."""
    arrivals, media = meeting_arrivals(model, random.Random(seed), items=items)
    clock = FakeClock(0.0)
    dropped: list[str] = []
    track = PlayoutTrack(
        cushion_ms=60,
        hold_ms=hold_ms,
        max_lag_ms=8000,
        adaptive=adaptive,
        clock=clock,
        on_cut_short=lambda key, _heard: dropped.append(key.item),
        # One recv() per slot, as above. DTX changes which of those slots' packets are sent, not what
        # is pulled when (tests/unit/test_opus_out.py decodes both the same, sample for sample).
        dtx=False,
    )
    result = await simulate(track, clock, arrivals, media)
    result.dropped = dropped
    return result
