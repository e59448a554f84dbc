"""Playout track: frames and pacing, a consumer that goes away and comes back, what it sends of the
model's audio, bad chunks never raising, the real clock. What the items do (cushion, hold, stalled
items, lag bound, clear) as heard through the track: test_playout_items.py; the queue alone:
test_playout_queue.py."""

from __future__ import annotations

import asyncio
import random
import time

import av
import numpy as np
import pytest
import soxr
from aiortc.mediastreams import MediaStreamError

from tests.unit.playout_audio import MS, audible, counter, key, mono, new_track, pcm_const, pcm_tone, pull
from translator_bot import metrics
from translator_bot.audio import playout_upsample
from translator_bot.audio.clock import FakeClock, MonotonicClock
from translator_bot.audio.playout import FRAME_SAMPLES, PlayoutKey, PlayoutTrack
from translator_bot.fixtures import load_manifest, read_pcm
from translator_bot.room.publication import FeedRelay

# ---- frames and pacing -------------------------------------------------------------------------


async def test_frames_have_one_format_and_contiguous_pts() -> None:
    track, _ = new_track()
    frames = await pull(track, 3)  # silence
    track.enqueue(pcm_tone(200), key("a"))
    track.end_item(key("a"))
    frames += await pull(track, 12)  # speech, then silence again
    assert any(audible(f) for f in frames) and not audible(frames[0]) and not audible(frames[-1])
    for n, frame in enumerate(frames):
        # 48 kHz mono s16 before encoding (the packets' format: test_opus_out.py).
        assert (frame.pcm.dtype, frame.pcm.shape) == (np.dtype(np.int16), (FRAME_SAMPLES,))
        assert frame.pts == n * FRAME_SAMPLES
    assert track.frames_sent == 15


async def test_deadlines_are_anchored_at_first_recv() -> None:
    track, clock = new_track()
    clock.set(250.0)  # time passing before the sender starts does not matter
    await pull(track, 5)
    assert clock.sleeps == pytest.approx([250.0, 250.02, 250.04, 250.06, 250.08], abs=1e-9)


class JitteryClock(FakeClock):
    """Every wake-up comes 0-8 ms late, as on a busy machine."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.random = random.Random(7)

    async def sleep_until(self, t: float) -> None:
        self.sleeps.append(t)
        self.set(max(self.now(), t) + self.random.uniform(0, 0.008))
        await asyncio.sleep(0)


async def test_late_wakeups_do_not_accumulate_into_drift() -> None:
    clock = JitteryClock()
    track = PlayoutTrack(clock=clock, dtx=False)  # a packet per slot (DTX: the next test)
    sent_at: list[float] = []
    for _ in range(3000):  # 60 s of frames
        await track.recv()
        sent_at.append(clock.now())
    deadlines = np.arange(3000) * 0.02
    lateness = np.array(sent_at) - deadlines
    # Each frame is at most one wake-up late; the error does not grow with time.
    assert lateness.min() >= 0
    assert lateness.max() < 0.0081 * 2
    assert abs(np.median(lateness[-100:]) - np.median(lateness[:100])) < 0.002
    # A relative sleep(0.02) loop with the same wake-ups would be ~12 s behind here.


async def test_a_welcome_wakes_an_idle_dtx_feed_and_sends_every_slot_for_a_while() -> None:
    """A listener subscribing to a feed deep in DTX: without the welcome it would get a keep-alive every
    400 ms (an aiortc listener plays nothing until the fifth); with it, a packet in every slot from
    the next one on, then the pause's DTX again."""
    clock = FakeClock(100.0)
    track = PlayoutTrack(clock=clock)
    for _ in range(11):  # the hangover, then the first DTX frame
        await track.recv()
    assert track.encoder.dtx_frames == 1
    clock.auto_advance = False
    waiting = asyncio.ensure_future(track.recv())
    clock.set(100.0 + 15.5 * 0.02)
    for _ in range(20):
        await asyncio.sleep(0)
    assert clock.sleeps[-1] == pytest.approx(100.0 + 30 * 0.02)  # asleep until the next keep-alive
    assert not waiting.done()
    track.welcome()
    await asyncio.sleep(0)
    clock.set(100.0 + 16 * 0.02)  # the next slot boundary
    packet = await asyncio.wait_for(waiting, 1)
    assert packet.pts == 16 * FRAME_SAMPLES and track.encoder.dtx_frames == 1
    clock.auto_advance = True
    pts = [(await track.recv()).pts for _ in range(148)]
    assert pts == [slot * FRAME_SAMPLES for slot in range(17, 165)] and track.encoder.dtx_frames == 1
    assert (await track.recv()).pts == 165 * FRAME_SAMPLES and track.encoder.dtx_frames == 2
    track.stop()


async def test_late_wakeups_do_not_accumulate_into_drift_with_dtx_either() -> None:
    """While idle with DTX, recv() sleeps 400 ms between keep-alives: each is still sent at most one
    wake-up after its slot, and its pts is its slot's."""
    clock = JitteryClock()
    track = PlayoutTrack(clock=clock)
    sent: list[tuple[float, int]] = []
    for _ in range(300):  # 10 frames of hangover, then ~2 minutes of keep-alives
        packet = await track.recv()
        sent.append((clock.now(), packet.pts or 0))
    assert track.encoder.dtx_frames == 290
    lateness = np.array([at - pts / 48_000 for at, pts in sent])
    assert lateness.min() >= 0
    assert lateness.max() < 0.0081 * 2
    gaps = np.diff([pts for _, pts in sent[10:]]) / 960
    assert set(gaps.tolist()) <= {20.0, 21.0}  # 400 ms apart (a slot more after a late wake-up)


async def test_catch_up_after_a_stall_then_back_on_schedule() -> None:
    track, clock = new_track()
    await pull(track, 10)
    clock.advance(0.1)  # the consumer was stalled for 100 ms
    now = clock.now()
    await pull(track, 5)
    assert clock.now() == now  # the five overdue frames went out at once
    await pull(track, 1)
    assert clock.sleeps[-1] == pytest.approx(100.0 + 15 * 0.02)


async def test_huge_stall_reanchors_without_a_burst_and_pts_follow_the_clock() -> None:
    before = counter(metrics.PLAYOUT_WARNINGS, reason="clock_jump")
    track, clock = new_track()
    await pull(track, 3)
    clock.auto_advance = False
    waiting = asyncio.create_task(track.next_frame())  # the consumer waits for frame 3 (due at 100.06)
    await asyncio.sleep(0)
    assert clock.waiting == 1
    clock.advance(30.0)  # the process was suspended while it waited: it wakes at 130.04
    clock.auto_advance = True
    frames = [await waiting, *await pull(track, 2)]
    # The 1499 slots missed are skipped, pts included: 130.04 s is slot 1502 of the schedule.
    assert [f.pts for f in frames] == [1502 * 960, 1503 * 960, 1504 * 960]
    assert clock.sleeps[-1] == pytest.approx(clock.now())  # paced again, not 1500 frames at once
    assert counter(metrics.PLAYOUT_WARNINGS, reason="clock_jump") - before == 1


@pytest.mark.parametrize("gap", [0.5, 3.0])
async def test_a_sender_that_comes_back_after_a_gap_is_paced_and_hears_all_the_queued_audio(
    gap: float,
) -> None:
    """The room was re-joined: a new PeerConnection starts calling recv() on the same track after a
    gap. No burst of the missed frames (the far end's jitter buffer would have to swallow it), no
    clock_jump warning (nothing is wrong), pts increasing, and the translation queued before and
    during the gap is played after it, from where it stopped."""
    before = counter(metrics.PLAYOUT_WARNINGS, reason="clock_jump")
    track, clock = new_track(cushion_ms=0)
    track.enqueue(pcm_tone(400), key("a"))
    frames = await pull(track, 10)  # the old connection sent 200 ms of it, then went away
    assert all(audible(f) for f in frames)
    clock.advance(gap)
    track.enqueue(pcm_tone(400), key("a"))  # the model went on translating meanwhile
    track.end_item(key("a"))
    resumed_at = clock.now()
    frames += await pull(track, 40)
    sent_at = clock.sleeps[-40:]
    # Real time from the first frame after the gap on: one frame per 20 ms, none owed.
    assert sent_at[0] == pytest.approx(resumed_at, abs=0.02)
    assert np.diff(sent_at) == pytest.approx([0.02] * 39, abs=1e-9)
    pts = np.array([f.pts for f in frames])
    assert (np.diff(pts) > 0).all() and (pts % FRAME_SAMPLES == 0).all()
    # Nothing queued was skipped: the 800 ms are all played, 40 frames of sound in a row.
    assert [audible(f) for f in frames] == [True] * 40 + [False] * 10
    assert track.played_samples(key("a")) == 800 * MS
    assert counter(metrics.PLAYOUT_WARNINGS, reason="clock_jump") == before


async def test_a_sender_gap_moves_pts_on_by_the_time_missed() -> None:
    """RTP timestamps (aiortc derives them from pts) keep following the clock across a gap, as after
    silence suppression: the receiver sees a timestamp gap equal to the arrival gap, not a 3 s jump in
    transit time."""
    track, clock = new_track()
    await pull(track, 5)
    clock.advance(3.0)
    frames = await pull(track, 2)
    assert [f.pts for f in frames] == [(5 + 149) * FRAME_SAMPLES, (5 + 150) * FRAME_SAMPLES]


async def test_a_re_published_feed_resumes_through_a_new_relay_at_real_time_pace() -> None:
    """The same, through the room's per-PeerConnection relays: the first one is stopped with its
    connection, the next one is created on re-publish and pulls from the same playout track."""
    track, clock = new_track(cushion_ms=0)
    track.enqueue(pcm_tone(1000), key("a"))
    track.end_item(key("a"))
    first = FeedRelay(track)
    frames = [await first.recv() for _ in range(10)]
    first.stop()
    clock.advance(1.5)  # the room was re-joined and the feed published again
    second = FeedRelay(track)
    resumed_at = clock.now()
    frames += [await second.recv() for _ in range(40)]
    assert clock.sleeps[-40] == pytest.approx(resumed_at, abs=0.02)
    assert np.diff(clock.sleeps[-40:]) == pytest.approx([0.02] * 39, abs=1e-9)
    assert (np.diff([f.pts for f in frames]) > 0).all()
    # The relays hand on the track's Opus packets: audible = not the cached silence packet.
    assert all(bytes(f) != track.encoder.silence_payload for f in frames) and track.readyState == "live"


async def test_stopped_track_raises_media_stream_error() -> None:
    track, _ = new_track()
    track.enqueue(pcm_tone(100), key("a"))
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


# ---- content ---------------------------------------------------------------------------------


async def test_speech_is_upsampled_without_loss_of_level_or_content() -> None:
    speech = read_pcm(next(u for u in load_manifest() if u.id == "u1-en"))
    track, _ = new_track()
    # Model-sized deltas of irregular length.
    cuts = np.cumsum(np.random.default_rng(1).integers(1_000, 6_000, size=100))
    for piece in np.split(speech, cuts[cuts < speech.size]):
        track.enqueue(piece.astype("<i2").tobytes(), key("a"))
    track.end_item(key("a"))
    frames = await pull(track, speech.size // 480 + 5)
    out = mono(frames)
    back = np.asarray(soxr.resample(out, 48_000, 24_000, quality="VHQ"))[: speech.size]
    error = back - speech
    snr = 10 * np.log10(np.sum(speech.astype(float) ** 2) / np.sum(error**2))
    assert snr > 45, snr
    assert track.played_samples(key("a")) == speech.size
    assert track.underruns == 0


# ---- odd and bad chunks ------------------------------------------------------------------------


async def test_odd_length_chunks_play_exactly_like_whole_chunks() -> None:
    audio = pcm_tone(300)
    reference, _ = new_track()
    reference.enqueue(audio, key("a"))
    reference.end_item(key("a"))
    expected = mono(await pull(reference, 20))

    before = counter(metrics.PLAYOUT_WARNINGS, reason="odd_length")
    track, _ = new_track()
    rng = random.Random(3)
    position = 0
    odd_chunks = 0
    while position < len(audio):
        size = rng.randrange(1, 400)
        odd_chunks += size % 2 and position + size <= len(audio)
        track.enqueue(audio[position : position + size], key("a"))
        position += size
    track.end_item(key("a"))
    assert np.array_equal(mono(await pull(track, 20)), expected)
    assert counter(metrics.PLAYOUT_WARNINGS, reason="odd_length") - before >= odd_chunks > 0


async def test_bad_chunks_never_raise_and_are_counted() -> None:
    track, _ = new_track(cushion_ms=0)
    cases = {
        "empty_chunk": (b"", key("a")),
        "bad_chunk": ("not audio", key("a")),
        "bad_item_id": (pcm_tone(20), None),
        "oversized_chunk": (bytes(24_000 * 2 * 61), key("a")),
    }
    for reason, (chunk, item_id) in cases.items():
        before = counter(metrics.PLAYOUT_WARNINGS, reason=reason)
        track.enqueue(chunk, item_id)  # type: ignore[arg-type]
        assert counter(metrics.PLAYOUT_WARNINGS, reason=reason) - before == 1, reason
    assert track.queued_ms() == 0
    track.enqueue(bytearray(pcm_const(20, 3000)), key("a"))
    track.enqueue(memoryview(pcm_const(20, 3000)), key("a"))
    track.end_item(key("a"))
    frames = await pull(track, 3)
    assert [audible(f) for f in frames] == [True, True, False]


async def test_chunks_after_end_item_are_dropped_and_counted() -> None:
    track, _ = new_track(cushion_ms=0)
    track.enqueue(pcm_const(20, 3000), key("a"))
    track.end_item(key("a"))
    before = counter(metrics.PLAYOUT_WARNINGS, reason="after_end")
    track.enqueue(pcm_const(20, 3000), key("a"))
    await pull(track, 2)
    track.enqueue(pcm_const(20, 3000), key("a"))  # finished and forgotten from the queue, still known
    assert counter(metrics.PLAYOUT_WARNINGS, reason="after_end") - before == 2
    assert track.played_samples(key("a")) == 20 * MS


async def test_a_failing_on_cut_short_callback_does_not_break_playout() -> None:
    def explode(item: PlayoutKey, played: int) -> None:
        raise RuntimeError("engine bug")

    track, _ = new_track(on_cut_short=explode)
    track.enqueue(pcm_tone(100), key("a"))
    assert track.clear() == {key("a"): 0}
    track.enqueue(pcm_tone(100), key("b"))
    assert audible(await track.next_frame())


# ---- real clock --------------------------------------------------------------------------------


def drift_seconds(lateness: np.ndarray, window: int = 50) -> float:
    """How far the schedule moved over the run: the on-time end (20th percentile) of the lateness of
    the last `window` frames against that of the first. A drift-free schedule absorbs a moment of load
    (a few late wake-ups, then back on time), which a trend line through every point reads as drift
    when it falls near either end; a drifting one is late by more and more, on time never again."""
    first = float(np.percentile(lateness[:window], 20))
    last = float(np.percentile(lateness[-window:], 20))
    return last - first


def test_drift_is_read_from_the_on_time_frames_not_from_a_moment_of_load() -> None:
    on_time = np.full(250, 0.0002)
    loaded_at_the_end = on_time.copy()
    loaded_at_the_end[235:240] = [0.030, 0.024, 0.012, 0.004, 0.001]  # late wake-ups, then caught up
    assert abs(drift_seconds(loaded_at_the_end)) < 0.0001
    slipping = on_time + np.arange(250) * 0.00002  # 20 us later every frame: 5 ms over the run
    assert drift_seconds(slipping) > 0.004


@pytest.mark.realtime_clock
async def test_real_clock_drift_under_1ms_over_5s() -> None:
    track = PlayoutTrack(clock=MonotonicClock())
    first = time.monotonic()
    lateness: list[float] = []
    for n in range(250):
        track.enqueue(pcm_tone(20), key("a"))
        await track.recv()
        lateness.append(time.monotonic() - first - n * 0.02)
    drift = drift_seconds(np.array(lateness))
    assert abs(drift) < 0.001, f"drift {drift * 1000:.2f} ms over 5 s"


async def test_the_real_clock_yields_to_the_loop_on_a_deadline_already_past() -> None:
    clock = MonotonicClock()
    ran: list[bool] = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    await clock.sleep_until(clock.now() - 1.0)
    assert ran == [True]


async def test_catching_up_after_a_stall_lets_audio_that_arrived_meanwhile_in() -> None:
    """The event loop stalls (on purpose, time.sleep) while the track waits for its next frame; the
    model's audio that arrived meanwhile needs a few loop passes to reach the queue (socket read,
    parse, the engine's task). The frames caught up after the stall must let those passes run, as
    the sender's worker-thread encode used to do by accident, or the queue runs dry mid-item."""
    track = PlayoutTrack(clock=MonotonicClock(), cushion_ms=0)
    track.enqueue(pcm_tone(140), key("a"))  # frames 0-6
    frames = [await track.next_frame() for _ in range(2)]

    async def consume() -> None:
        frames.extend([await track.next_frame() for _ in range(13)])

    async def deliver(pcm: bytes, passes: int) -> None:
        for _ in range(passes):
            await asyncio.sleep(0)
        track.enqueue(pcm, key("a"))

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the consumer now waits for frame 2's deadline
    time.sleep(0.25)  # noqa: ASYNC251 - the stall under test: 12 frame slots go by
    delivery = asyncio.create_task(deliver(pcm_tone(400), passes=3))
    await consumer
    await delivery
    track.end_item(key("a"))
    assert [audible(f) for f in frames] == [True] * 15
    assert track.underruns == 0


async def test_upsampler_failure_drops_the_chunk_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __init__(self, rate: int) -> None:
            pass

        def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
            raise ValueError("Frame does not match AudioResampler setup.")

    before = counter(metrics.PLAYOUT_WARNINGS, reason="resample_error")
    track, _ = new_track(cushion_ms=0)
    monkeypatch.setattr(playout_upsample, "MonoResampler", Broken)
    track.enqueue(pcm_const(40, 3000), key("a"))
    assert counter(metrics.PLAYOUT_WARNINGS, reason="resample_error") - before == 1
    monkeypatch.undo()
    track.enqueue(pcm_const(40, 3000), key("a"))
    track.end_item(key("a"))
    frames = await pull(track, 3)
    assert [audible(f) for f in frames] == [True, True, False]


async def test_a_bad_first_chunk_does_not_create_a_blocking_item() -> None:
    track, _ = new_track(cushion_ms=0)
    track.enqueue(b"", key("x"))
    track.enqueue(bytes(24_000 * 2 * 61), key("y"))
    track.enqueue(pcm_const(20, 3000), key("z"))
    assert audible(await track.next_frame())
