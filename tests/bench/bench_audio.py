"""Audio path benchmark: inbound conversion cost and quality, playout and output cost, pacing drift.

    .venv/bin/python -m tests.bench.bench_audio [--pacing-seconds 60] [--passes 10] [--output-passes 7]
    .venv/bin/python -m tests.bench.bench_audio --only-idle-feeds [--idle-feeds 4] [--idle-runs 5]

Conversion is measured on the 48 kHz stereo speech fixture cut into the 20 ms frames aiortc delivers,
for this project's stateful converter and, in the same run and interleaved pass by pass, for the naive
per-frame `librosa.to_mono` + `librosa.resample`. SNR is against one offline whole-file soxr VHQ resample.
Output: CPU per 20 ms frame of getting a feed's frame onto the wire as aiortc's sender does it, for the
path of an `av.AudioFrame` (the baseline: a stereo frame, aiortc's pure-Python audio level on the loop,
its Opus encoder in a worker thread) and for the track's own Opus packets (encoded on the loop, or the
cached silence packet, then aiortc's `pack`), speech and silence apart; passes interleaved, medians.
Idle feeds: the whole sending side of feeds with nothing to play, over real PeerConnections on
loopback (aiortc's RTP sender, SRTP, DTLS, ICE, RTCP; the receiving peers run in a child process, so
only the sender's CPU is counted), with Opus DTX and with a packet every 20 ms, runs interleaved.
Pacing runs a playout track against the real monotonic clock for --pacing-seconds, with a consumer that
does aiortc's per-packet work, next to a `sleep(0.02)` loop in the same event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from typing import Any

import av
import librosa
import numpy as np
import soxr
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import compute_audio_level_dbov

from translator_bot.audio.clock import MonotonicClock
from translator_bot.audio.inbound import InboundConverter
from translator_bot.audio.opus_out import OpusFeedEncoder
from translator_bot.audio.playout import PlayoutKey, PlayoutTrack
from translator_bot.audio.playout_upsample import ItemUpsampler
from translator_bot.fixtures import fixtures_dir, load_manifest, read_pcm, read_wav

STEREO_FIXTURE = "u1-en-48k-stereo.wav"
TARGET_MEDIAN_US = 50.0
TARGET_SPEEDUP = 3.0
TARGET_SNR_DB = 70.0
TARGET_DRIFT_MS = 1.0


# ---- inbound conversion ------------------------------------------------------------------------


def fixture_frames() -> tuple[list[av.AudioFrame], np.ndarray]:
    samples, rate = read_wav(fixtures_dir() / STEREO_FIXTURE)
    if rate != 48_000 or samples.shape[1] != 2:
        raise SystemExit(f"{STEREO_FIXTURE} must be 48 kHz stereo, got {rate} Hz x {samples.shape[1]}")
    usable = samples[: len(samples) // 960 * 960]
    frames = []
    for start in range(0, len(usable), 960):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(usable[start : start + 960]).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 48_000
        frame.pts = start
        frame.time_base = fractions.Fraction(1, 48_000)
        frames.append(frame)
    mono = usable.astype(np.float64).mean(axis=1)
    reference = np.asarray(soxr.resample(mono, 48_000, 24_000, quality="VHQ"), dtype=np.float64)
    return frames, reference


def naive_librosa(frame: av.AudioFrame) -> bytes:
    """What a popular sample does: stateless to_mono + resample of every 20 ms frame on its own."""
    stereo = frame.to_ndarray().reshape(-1, 2).T.astype(np.float32) / 32768.0
    mono = librosa.to_mono(stereo)
    resampled = librosa.resample(mono, orig_sr=48_000, target_sr=24_000)
    return bytes((np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def floor_read(frame: av.AudioFrame) -> bytes:
    return bytes(frame.to_ndarray().tobytes())


def timed_pass(
    convert: Callable[[av.AudioFrame], bytes], frames: list[av.AudioFrame]
) -> tuple[list[float], bytes]:
    times: list[float] = []
    out: list[bytes] = []
    clock = time.perf_counter
    for frame in frames:
        t0 = clock()
        out.append(convert(frame))
        times.append(clock() - t0)
    return times, b"".join(out)


def snr_db(reference: np.ndarray, pcm: bytes) -> float:
    test = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n = min(len(reference), len(test))
    error = test[:n] - reference[:n]
    return float(10 * np.log10(np.sum(reference[:n] ** 2) / np.sum(error**2)))


def edge_ratio(reference: np.ndarray, pcm: bytes, frame: int = 480) -> float:
    """Error energy within 1 ms of 20 ms frame edges / error energy elsewhere (1.0 = no edge artefact)."""
    test = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n = min(len(reference), len(test))
    error = (test[:n] - reference[:n]) ** 2
    position = np.arange(n) % frame
    edge = (position < 24) | (position >= frame - 24)
    inner = (np.arange(n) > 4 * frame) & (np.arange(n) < n - 4 * frame)
    return float(error[edge & inner].mean() / error[~edge & inner].mean())


def bench_conversion(passes: int) -> dict[str, float]:
    frames, reference = fixture_frames()
    # Warm up both (librosa's first call imports and builds its filters).
    naive_librosa(frames[0])
    InboundConverter().convert(frames[0])
    ours_times: list[float] = []
    naive_times: list[float] = []
    floor_times: list[float] = []
    setup_times: list[float] = []
    ours_pcm = naive_pcm = b""
    for _ in range(passes):
        converter = InboundConverter()
        times, ours_pcm = timed_pass(converter.convert, frames)
        ours_pcm += converter.flush()
        # The first frame of a stream also builds the filter graph (~0.5 ms, once per track and per
        # format change): reported on its own so the table shows the steady per-frame cost.
        setup_times.append(times[0])
        ours_times += times[1:]
        times, naive_pcm = timed_pass(naive_librosa, frames)
        naive_times += times[1:]
        times, _ = timed_pass(floor_read, frames)
        floor_times += times[1:]

    def us(values: list[float], q: float) -> float:
        return float(np.percentile(values, q) * 1e6)

    rows = [
        (
            "InboundConverter (FFmpeg swr, stateful)",
            ours_times,
            snr_db(reference, ours_pcm),
            edge_ratio(reference, ours_pcm),
        ),
        (
            "per-frame librosa.resample",
            naive_times,
            snr_db(reference, naive_pcm),
            edge_ratio(reference, naive_pcm),
        ),
        ("floor: frame.to_ndarray()", floor_times, float("nan"), float("nan")),
    ]
    print(
        f"\nInbound 48 kHz stereo 20 ms frame -> 24 kHz mono pcm16 ({len(frames)} frames x {passes} passes)"
    )
    print(f"{'approach':40} {'median us':>10} {'p99 us':>9} {'SNR dB':>8} {'edge err':>9}")
    for name, times, snr, edges in rows:
        snr_text = "-" if np.isnan(snr) else f"{snr:.1f}"
        edge_text = "-" if np.isnan(edges) else f"{edges:.1f}x"
        print(f"{name:40} {us(times, 50):10.1f} {us(times, 99):9.1f} {snr_text:>8} {edge_text:>9}")
    print(f"{'(first frame of a stream, with set-up)':40} {us(setup_times, 50):10.1f}")
    speedup = us(naive_times, 50) / us(ours_times, 50)
    result = {
        "median_us": us(ours_times, 50),
        "p99_us": us(ours_times, 99),
        "snr_db": rows[0][2],
        "speedup": speedup,
        "naive_snr_db": rows[1][2],
    }
    print(
        f"speed-up over per-frame librosa: {speedup:.1f}x   "
        f"targets: median <= {TARGET_MEDIAN_US:.0f} us [{mark(result['median_us'] <= TARGET_MEDIAN_US)}], "
        f">= {TARGET_SPEEDUP:.0f}x [{mark(speedup >= TARGET_SPEEDUP)}], "
        f"SNR >= {TARGET_SNR_DB:.0f} dB [{mark(result['snr_db'] >= TARGET_SNR_DB)}]"
    )
    return result


# ---- playout cost ------------------------------------------------------------------------------


async def bench_playout_cost() -> None:
    from translator_bot.audio.clock import FakeClock

    speech = read_pcm(next(u for u in load_manifest() if u.id == "u1-en"))
    chunk = speech[:4_800].astype("<i2").tobytes()  # 200 ms, a typical model delta
    track = PlayoutTrack(clock=FakeClock(), max_lag_ms=600_000)
    enqueue_times = []
    for i in range(200):
        t0 = time.perf_counter()
        track.enqueue(chunk, PlayoutKey("lane", f"item-{i // 20}"))
        enqueue_times.append(time.perf_counter() - t0)
    recv_times = []
    for _ in range(1_000):
        t0 = time.perf_counter()
        await track.recv()
        recv_times.append(time.perf_counter() - t0)
    idle = PlayoutTrack(clock=FakeClock(), dtx=False)  # nothing queued: silence in every slot
    idle_times = []
    for _ in range(1_000):
        t0 = time.perf_counter()
        await idle.recv()
        idle_times.append(time.perf_counter() - t0)
    print("\nPlayout cost (event-loop time)")
    print(f"{'step':52} {'median us':>10} {'p99 us':>9}")
    for name, values in (
        ("enqueue 200 ms chunk (24 -> 48 kHz, stateful)", enqueue_times),
        ("recv(): speech frame -> Opus packet (fake clock)", recv_times),
        ("recv(): idle frame -> cached silence (fake clock)", idle_times),
    ):
        print(f"{name:52} {np.median(values) * 1e6:10.1f} {np.percentile(values, 99) * 1e6:9.1f}")


# ---- output path: frame -> what aiortc's sender puts in an RTP packet ---------------------------


def speech_frames48k() -> list[np.ndarray]:
    """The fixture speech as the playout queue hands it out: 48 kHz mono int16, 20 ms frames."""
    upsampler = ItemUpsampler()
    pcm = np.concatenate(
        [upsampler.upsample(read_pcm(u).astype(np.int16)) for u in load_manifest()] + [upsampler.flush()]
    )
    return list(pcm[: pcm.size // 960 * 960].reshape(-1, 960))


def baseline_frame(mono: np.ndarray, pts: int) -> av.AudioFrame:
    """The frame the baseline's track returned: 48 kHz stereo s16 (perf-baseline's _stereo_frame)."""
    frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = 48_000
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 48_000)
    return frame


async def baseline_output(frames: list[np.ndarray]) -> float:
    """Process CPU per frame of the baseline: build the frame, then what aiortc's sender does with an
    AudioFrame (audio level on the loop, encode in the default executor)."""
    loop = asyncio.get_running_loop()
    encoder = OpusEncoder()
    t0 = time.process_time()
    for n, mono in enumerate(frames):
        frame = baseline_frame(mono, n * 960)
        compute_audio_level_dbov(frame)
        await loop.run_in_executor(None, encoder.encode, frame, False)
    return (time.process_time() - t0) / len(frames)


async def packet_output(frames: list[np.ndarray], *, threaded: bool = False) -> float:
    """Process CPU per frame of the track's path: its own Opus packet (silence from the cache), then
    what aiortc's sender does with a packet (`pack`). `threaded` encodes in the default executor."""
    loop = asyncio.get_running_loop()
    encoder = OpusFeedEncoder()
    packer = OpusEncoder()
    t0 = time.process_time()
    for n, mono in enumerate(frames):
        if threaded:
            packet = await loop.run_in_executor(None, encoder.encode, mono, n * 960)
        else:
            packet = encoder.encode(mono, n * 960)
        packer.pack(packet)
    return (time.process_time() - t0) / len(frames)


async def bench_output(passes: int) -> dict[str, float]:
    speech = speech_frames48k()
    silence = [np.zeros(960, dtype=np.int16)] * len(speech)
    cases: dict[str, Callable[[], Awaitable[float]]] = {
        "baseline: AudioFrame, speech": lambda: baseline_output(speech),
        "baseline: AudioFrame, silence": lambda: baseline_output(silence),
        "own Opus on the loop, speech": lambda: packet_output(speech),
        "own Opus in a worker thread, speech": lambda: packet_output(speech, threaded=True),
        "cached silence packet": lambda: packet_output(silence),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for case in cases.values():  # warm-up: imports, the executor's thread
        await case()
    for _ in range(passes):  # interleaved, so that a busy spell of the machine hits all alike
        for name, case in cases.items():
            results[name].append(await case() * 1e6)
    print(f"\nOutput path: process CPU per 20 ms frame ({len(speech)} frames x {passes} passes)")
    print(f"{'path':40} {'median us':>10} {'min us':>8} {'max us':>8}")
    for name, values in results.items():
        print(f"{name:40} {np.median(values):10.1f} {min(values):8.1f} {max(values):8.1f}")
    medians = {name: float(np.median(values)) for name, values in results.items()}
    print(
        "speech: "
        f"{medians['baseline: AudioFrame, speech'] / medians['own Opus on the loop, speech']:.1f}x cheaper; "
        "silence: "
        f"{medians['baseline: AudioFrame, silence'] / medians['cached silence packet']:.1f}x cheaper"
    )
    return medians


# ---- real-time pacing --------------------------------------------------------------------------


def drift_ms(lateness: np.ndarray, period: float = 0.02) -> float:
    """Movement of the schedule over the run: the least-squares trend of lateness, not its jitter."""
    t = np.arange(lateness.size) * period
    return float(np.polyfit(t, lateness, 1)[0] * t[-1] * 1000)


async def feed(track: PlayoutTrack, speech: list[np.ndarray]) -> None:
    """A model streaming 200 ms chunks in real time after an initial burst, one item per utterance."""
    clock = MonotonicClock()
    start = clock.now()
    sent = 0.0
    n = 0
    while True:
        utterance = speech[n % len(speech)]
        item_id = PlayoutKey("lane", f"item-{n}")
        for position in range(0, utterance.size, 4_800):
            piece = utterance[position : position + 4_800]
            track.enqueue(piece.astype("<i2").tobytes(), item_id)
            sent += piece.size / 24_000
            # Stay 400 ms ahead of real time, like a model that streams a little faster than it speaks.
            await clock.sleep_until(start + max(0.0, sent - 0.4))
        track.end_item(item_id)
        n += 1


async def naive_loop(seconds: float, out: list[float]) -> None:
    start = time.monotonic()
    frames = round(seconds / 0.02)
    for _ in range(frames):
        await asyncio.sleep(0.02)
    out.append(time.monotonic() - start - frames * 0.02)


async def bench_pacing(seconds: float) -> dict[str, float]:
    speech = [read_pcm(u) for u in load_manifest()]
    track = PlayoutTrack(clock=MonotonicClock())
    feeder = asyncio.create_task(feed(track, speech))
    naive_result: list[float] = []
    naive = asyncio.create_task(naive_loop(seconds, naive_result))
    frames = round(seconds / 0.02)
    lateness = np.empty(frames)
    try:
        await track.recv()
        anchor = time.monotonic()
        lateness[0] = 0.0
        packer = OpusEncoder()
        for n in range(1, frames):
            packet = await track.recv()
            lateness[n] = time.monotonic() - anchor - (packet.pts or 0) / 48_000  # its slot (DTX skips some)
            packer.pack(packet)  # what aiortc's sender does with a packet on the loop
        # Nobody plays the track from here on: stop feeding it before waiting for the slower loop.
        feeder.cancel()
        await naive
    finally:
        for task in (feeder, naive):
            task.cancel()
        for task in (feeder, naive):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        track.stop()
    second = 50
    result = {
        "drift_ms": drift_ms(lateness),
        "edge_drift_ms": float(np.median(lateness[-second:]) - np.median(lateness[1 : second + 1])) * 1000,
        "late_p50_ms": float(np.percentile(lateness[1:], 50) * 1000),
        "late_p99_ms": float(np.percentile(lateness[1:], 99) * 1000),
        "late_max_ms": float(lateness.max() * 1000),
        "naive_ms": naive_result[0] * 1000 if naive_result else float("nan"),
    }
    print(f"\nPacing against the real monotonic clock for {seconds:.0f} s ({frames} frames)")
    print(f"{'measure':58} {'value':>10}")
    print(f"{'drift: trend of lateness over the run (ms)':58} {result['drift_ms']:10.3f}")
    print(f"{'drift: median lateness last 1 s - first 1 s (ms)':58} {result['edge_drift_ms']:10.3f}")
    print(
        f"{'lateness per frame p50 / p99 / max (ms)':58} "
        f"{result['late_p50_ms']:.2f} / {result['late_p99_ms']:.2f} / {result['late_max_ms']:.2f}"
    )
    print(f"{'underruns / frames sent':58} {track.underruns:>5} / {track.frames_sent}")
    print(f"{'same-loop sleep(0.02) loop: behind after the run (ms)':58} {result['naive_ms']:10.1f}")
    print(f"target: |drift| < {TARGET_DRIFT_MS:.0f} ms [{mark(abs(result['drift_ms']) < TARGET_DRIFT_MS)}]")
    return result


# ---- idle feeds over real PeerConnections ------------------------------------------------------


def _idle_receiver(conn: Any) -> None:
    """Child process: answer each offer and read every track it gets (and drop the frames)."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        pcs: list[RTCPeerConnection] = []
        readers: list[asyncio.Task[None]] = []

        async def read(track: MediaStreamTrack) -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    await track.recv()

        while True:
            message = await loop.run_in_executor(None, conn.recv)
            if message is None:
                break
            pc = RTCPeerConnection()
            pc.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            pcs.append(pc)
            conn.send(pc.localDescription.sdp)
        for task in readers:
            task.cancel()
        for pc in pcs:
            await pc.close()
        conn.send("closed")

    asyncio.run(serve())


async def idle_feeds_cpu(conn: Any, feeds: int, seconds: float, *, dtx: bool) -> tuple[float, float]:
    """Process CPU (% of a core) per idle feed and packets per second per feed, with or without DTX."""
    loop = asyncio.get_running_loop()
    pcs: list[RTCPeerConnection] = []
    tracks = [PlayoutTrack(clock=MonotonicClock(), dtx=dtx) for _ in range(feeds)]
    try:
        for track in tracks:
            pc = RTCPeerConnection()
            pcs.append(pc)
            pc.addTransceiver(track, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            conn.send(pc.localDescription.sdp)
            answer = await loop.run_in_executor(None, conn.recv)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        async with asyncio.timeout(20):
            while not all(pc.connectionState == "connected" for pc in pcs):  # noqa: ASYNC110 - aiortc's state
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # past the DTX hangover and the connections' start-up
        packets0 = sum(t.packets_sent for t in tracks)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        packets = sum(t.packets_sent for t in tracks) - packets0
        return cpu / wall / feeds * 100, packets / wall / feeds
    finally:
        for track in tracks:
            track.stop()
        for pc in pcs:
            await pc.close()


async def bench_idle_feeds(feeds: int, seconds: float, runs: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    receiver = context.Process(target=_idle_receiver, args=(child,), daemon=True)
    receiver.start()
    cpu: dict[bool, list[float]] = {True: [], False: []}
    rate: dict[bool, list[float]] = {True: [], False: []}
    try:
        await idle_feeds_cpu(parent, feeds, 2.0, dtx=True)  # warm-up: imports, the child's first PCs
        for run in range(runs):
            for dtx in (True, False) if run % 2 == 0 else (False, True):  # A B, B A, ...
                c, r = await idle_feeds_cpu(parent, feeds, seconds, dtx=dtx)
                cpu[dtx].append(c)
                rate[dtx].append(r)
    finally:
        parent.send(None)
        await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        receiver.join(10)
        if receiver.is_alive():
            receiver.kill()
    print(f"\nIdle feeds over real PeerConnections: {feeds} feeds, {seconds:.0f} s x {runs} runs per mode")
    print("sender process CPU (% of a core) per idle feed, and packets per second per feed")
    print(f"{'mode':34} {'median %':>9} {'min':>6} {'max':>6} {'packets/s':>10}")
    result = {}
    for dtx, name in ((False, "a packet every 20 ms (dtx off)"), (True, "Opus DTX (default)")):
        print(
            f"{name:34} {np.median(cpu[dtx]):9.2f} {min(cpu[dtx]):6.2f} {max(cpu[dtx]):6.2f} "
            f"{np.median(rate[dtx]):10.1f}"
        )
        result["dtx" if dtx else "continuous"] = float(np.median(cpu[dtx]))
    print(f"DTX: {result['continuous'] / result['dtx']:.1f}x less CPU per idle feed")
    return result


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--pacing-seconds", type=float, default=60.0, help="real-time pacing run (0 skips)")
    parser.add_argument("--passes", type=int, default=10, help="passes over the speech fixture")
    parser.add_argument("--output-passes", type=int, default=7, help="passes of the output-path comparison")
    parser.add_argument("--only-output", action="store_true", help="run the output-path comparison alone")
    parser.add_argument("--idle-feeds", type=int, default=4, help="idle feeds sent at once")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="measured time per idle-feed run")
    parser.add_argument("--idle-runs", type=int, default=5, help="idle-feed runs per mode (0 skips)")
    parser.add_argument("--only-idle-feeds", action="store_true", help="run the idle-feed comparison alone")
    args = parser.parse_args()
    if args.only_idle_feeds:
        asyncio.run(bench_idle_feeds(args.idle_feeds, args.idle_seconds, args.idle_runs))
        return
    if args.only_output:
        asyncio.run(bench_output(args.output_passes))
        return
    bench_conversion(args.passes)
    asyncio.run(bench_playout_cost())
    asyncio.run(bench_output(args.output_passes))
    if args.idle_runs > 0:
        asyncio.run(bench_idle_feeds(args.idle_feeds, args.idle_seconds, args.idle_runs))
    if args.pacing_seconds > 0:
        asyncio.run(bench_pacing(args.pacing_seconds))


if __name__ == "__main__":
    main()
