"""Inbound audio path benchmark: what each received 20 ms packet costs, stage by stage, before and after.

    .venv/bin/python -m tests.bench.bench_inbound [--runs 5] [--seconds 8] [--baseline perf-baseline]

Two trees are measured in the same run, pass by pass interleaved (a noisy machine slows both alike):
this checkout and `--baseline` (a git ref, extracted to a temporary directory). Each pass is a fresh
process running `--worker`, so neither tree's imports or caches leak into the other's figures.

Isolated stages, per packet, on the 48 kHz stereo speech fixture encoded to Opus the way a browser sends it:
- aiortc's side (not ours to change; measured to know what ours is worth next to it): SRTP decrypt
  (pylibsrtp, AES128_CM_SHA1_80 as Janus negotiates), RTP parse, the audio jitter buffer, the Opus decode
  its decoder thread runs, and the decoder thread -> event loop hand-off (`run_coroutine_threadsafe` of
  a queue put per frame), as CPU on each side;
- ours: the conversion to 24 kHz mono pcm16 (speech frames, digital-silence frames as a muted
  microphone or the test participants' pauses send them, and a silent DTX sender's keep-alive frames,
  one per 400 ms), AudioIn's whole per-frame path (read,
  bookkeeping, conversion, hand-off to the lanes) on a track that never waits, for speech, silence and
  a speaker no lane interprets, the speech-end tracker on every frame, and the meeting's per-chunk
  path for a speaker interpreted into 1, 2 and 4 languages (its tracker, then each lane's engine
  intake and speech gate: `stage_speaker_lanes`).
Loopback (--seconds > 0): a sender process streams the fixture (speech, then as long a pause) over a real
aiortc PeerConnection to a receiver running AudioIn; printed is the receiver's CPU per packet on the
event-loop thread and on its other threads (the Opus decoder), then a cProfile of its event-loop thread
split into stages (profiled separately: the profiler inflates what it measures, read it as shares).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import fractions
import functools
import json
import math
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000
FRAME = 960  # samples per 20 ms at 48 kHz
TIME_BASE = fractions.Fraction(1, RATE)
STEREO_FIXTURE = "u1-en-48k-stereo.wav"
REPO = Path(__file__).resolve().parents[2]
WARM_UP_S = 2.0


# ---- inputs ----------------------------------------------------------------------------------------


def speech_frames() -> list[av.AudioFrame]:
    from translator_bot.fixtures import fixtures_dir, read_wav

    samples, rate = read_wav(fixtures_dir() / STEREO_FIXTURE)
    if rate != RATE or samples.shape[1] != 2:
        raise SystemExit(f"{STEREO_FIXTURE} must be 48 kHz stereo, got {rate} Hz x {samples.shape[1]}")
    usable = samples[: len(samples) // FRAME * FRAME]
    return [stereo_frame(usable[start : start + FRAME], start) for start in range(0, len(usable), FRAME)]


def silence_frames(count: int, *, every: int = 1, first: int = 0) -> list[av.AudioFrame]:
    """`count` silent frames from frame slot `first`, one per `every` slots (20: a silent DTX sender's
    keep-alives, one per 400 ms, each after a 380 ms gap)."""
    zeros = np.zeros((FRAME, 2), dtype=np.int16)
    return [stereo_frame(zeros, (first + i * every) * FRAME) for i in range(count)]


def stereo_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def opus_packets(frames: list[av.AudioFrame]) -> list[bytes]:
    """The frames as a browser's Opus encoder sends them (aiortc's encoder: 48 kHz stereo, voip)."""
    from aiortc.codecs.opus import OpusEncoder

    encoder = OpusEncoder()
    packets: list[bytes] = []
    for frame in frames:
        packets += encoder.encode(frame)[0]
    return packets


def timed_each(
    items: list[Any], step: Callable[[Any], object], between: Callable[[], object] | None = None
) -> float:
    """Median microseconds of `step` per item; `between` runs after each step, off the clock."""
    clock = time.perf_counter
    times = []
    for item in items:
        t0 = clock()
        step(item)
        times.append(clock() - t0)
        if between is not None:
            between()
    return statistics.median(times) * 1e6


# ---- isolated stages (one worker pass) ------------------------------------------------------------


def stage_srtp(packets: list[bytes], passes: int) -> float:
    import pylibsrtp
    from aiortc.rtp import RtpPacket

    key = os.urandom(30)
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    medians = []
    seq = 0
    for _ in range(passes):
        protected = []
        for i, payload in enumerate(packets):
            rtp = RtpPacket(payload_type=111, sequence_number=seq % 65536, timestamp=i * FRAME, ssrc=1234)
            rtp.payload = payload
            protected.append(tx.protect(rtp.serialize()))
            seq += 1
        medians.append(timed_each(protected, rx.unprotect))  # each once: replays are refused
    return statistics.median(medians)


def stage_rtp_parse(packets: list[bytes], passes: int) -> float:
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    plain = []
    for i, payload in enumerate(packets):
        rtp = RtpPacket(payload_type=111, sequence_number=i, timestamp=i * FRAME, ssrc=1234)
        rtp.payload = payload
        plain.append(rtp.serialize())
    extensions = HeaderExtensionsMap()
    return statistics.median(
        timed_each(plain, lambda data: RtpPacket.parse(data, extensions)) for _ in range(passes)
    )


def stage_jitter(packets: list[bytes], passes: int) -> float:
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket

    medians = []
    for _ in range(passes):
        rtps = []
        for i, payload in enumerate(packets):
            rtp = RtpPacket(payload_type=111, sequence_number=i, timestamp=i * FRAME, ssrc=1234)
            rtp.payload = payload
            rtp._data = payload  # type: ignore[attr-defined]  # what the receiver's depayload sets
            rtps.append(rtp)
        buffer = JitterBuffer(capacity=16, prefetch=4)  # the receiver's audio settings
        medians.append(timed_each(rtps, buffer.add))
    return statistics.median(medians)


def stage_decode(packets: list[bytes], passes: int) -> float:
    from aiortc.codecs.opus import OpusDecoder
    from aiortc.jitterbuffer import JitterFrame

    medians = []
    for _ in range(passes):
        decoder = OpusDecoder()
        encoded = [JitterFrame(payload, i * FRAME) for i, payload in enumerate(packets)]
        medians.append(timed_each(encoded, decoder.decode))
    return statistics.median(medians)


def stage_handoff(frames: list[av.AudioFrame], passes: int) -> tuple[float, float]:
    """CPU per frame of aiortc's decoder-thread -> loop hand-off: (on the loop, on the thread)."""

    async def one_pass() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue()
        thread_cpu: list[float] = []

        def produce() -> None:
            t0 = time.thread_time()
            for frame in frames:
                asyncio.run_coroutine_threadsafe(queue.put(frame), loop)
                time.sleep(0.0005)  # frames arrive spread out, not as one burst the loop batches
            asyncio.run_coroutine_threadsafe(queue.put(None), loop)
            thread_cpu.append(time.thread_time() - t0)

        producer = threading.Thread(target=produce)
        t0 = time.thread_time()
        producer.start()
        while await queue.get() is not None:
            pass
        loop_cpu = time.thread_time() - t0
        producer.join()
        return loop_cpu / len(frames) * 1e6, thread_cpu[0] / len(frames) * 1e6

    results = [asyncio.run(one_pass()) for _ in range(passes)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def stage_convert(frames: list[av.AudioFrame], passes: int) -> float:
    from translator_bot.audio.inbound import InboundConverter

    medians = []
    for _ in range(passes):
        converter = InboundConverter()
        converter.convert(frames[0])  # the resampler's graph is built once per track, not per frame
        medians.append(timed_each(frames[1:], converter.convert))
    return statistics.median(medians)


class ListTrack(MediaStreamTrack):
    """A track whose recv() never waits: AudioIn's own per-frame cost, nothing else."""

    kind = "audio"

    def __init__(self, frames: list[av.AudioFrame]) -> None:
        super().__init__()
        self._frames: Iterator[av.AudioFrame] = iter(frames)
        self.ended = asyncio.Event()
        self.calls: list[float] = []  # when each recv() was entered: the gaps are the reader's work

    async def recv(self) -> av.AudioFrame:
        self.calls.append(time.perf_counter())
        for frame in self._frames:
            return frame
        self.ended.set()
        raise MediaStreamError


def stage_audio_in(frames: list[av.AudioFrame], passes: int, *, lane: bool = True) -> float:
    """AudioIn's whole per-frame path; `lane=False`: for a speaker no lane interprets (a tree whose
    AudioIn cannot be told so converts their audio all the same, and is measured doing that)."""
    import inspect

    from translator_bot.interpreter.audio_in import AudioIn

    async def one_pass() -> float:
        received = [0]

        def on_pcm(pid: str, pcm: bytes) -> None:
            received[0] += len(pcm)

        knows_lanes = "needed" in inspect.signature(AudioIn).parameters
        if knows_lanes:
            audio_in = AudioIn(on_pcm, name_of=str, needed=lambda pid: lane)
        else:
            audio_in = AudioIn(on_pcm, name_of=str)
        track = ListTrack(frames)
        audio_in.start("p1", "a", track)
        await track.ended.wait()
        await audio_in.aclose()
        if (received[0] == 0) == (lane or not knows_lanes):
            raise SystemExit(f"AudioIn handed {received[0]} bytes on with lane={lane}")
        # The first frame also builds the resampler (milliseconds, once per track): left out.
        return statistics.median(b - a for a, b in zip(track.calls[1:], track.calls[2:], strict=False)) * 1e6

    return statistics.median(asyncio.run(one_pass()) for _ in range(passes))


def stage_speech_tracker(frames: list[av.AudioFrame], passes: int) -> float:
    """A lane's speech-end tracker (latency measurement) fed one 20 ms frame of 24 kHz speech: paid
    once per lane, so a speaker heard in two languages pays it twice on the same audio."""
    from translator_bot.audio.inbound import InboundConverter
    from translator_bot.interpreter.speech import SpeechEndTracker

    converter = InboundConverter()
    pcm = [chunk for frame in frames if (chunk := converter.convert(frame))]
    medians = []
    for _ in range(passes):
        tracker = SpeechEndTracker()

        def feed(chunk: bytes, tracker: SpeechEndTracker = tracker) -> None:
            tracker.feed(chunk, time.monotonic())

        medians.append(timed_each(pcm, feed))
    return statistics.median(medians)


def stage_speaker_lanes(frames: list[av.AudioFrame], passes: int, lanes: int) -> float:
    """The meeting's per-chunk path for one speaker interpreted into `lanes` languages: the meeting's
    `_speaker_audio` (the speaker's speech-end tracker, then each lane's push: its engine session's
    intake, history and speech gate), on real lanes and real realtime sessions that are not connected
    (their input is kept and gated all the same, and taken in appends as a link's writer takes it,
    outside the measured call), with the 20 s history already full."""
    from pydantic import SecretStr

    from translator_bot.audio.inbound import InboundConverter
    from translator_bot.engine.endpoint import endpoint_for
    from translator_bot.engine.options import EngineOptions
    from translator_bot.engine.realtime import RealtimeSession
    from translator_bot.interpreter.lane import Lane, spec_for
    from translator_bot.interpreter.meeting import Meeting
    from translator_bot.interpreter.plan import Member, plan_lanes
    from translator_bot.interpreter.speech import SpeechEndTracker
    from translator_bot.languages import parse_language
    from translator_bot.settings import Settings

    converter = InboundConverter()
    pcm = [chunk for frame in frames if (chunk := converter.convert(frame))]
    settings = Settings(
        engine="realtime",
        metrics_port=0,
        openai_api_key=SecretStr("sk-bench"),
        openai_base_url="http://127.0.0.1:9/v1",
    )
    targets = ["es", "fr", "de", "it", "pt", "ja", "zh", "ko"][:lanes]
    members = [Member("a", "Ana", parse_language("en"))]
    members += [Member(f"l{i}", f"Listener {i}", parse_language(tag)) for i, tag in enumerate(targets)]
    plans = [plan for plan in plan_lanes(members).values() if plan.speaker.id == "a"]

    async def one_pass() -> float:
        room: Any = None  # never used: the meeting is not run, only its per-chunk path is called
        meeting = Meeting(settings, room, "bench")
        tracker = meeting._speech["a"] = SpeechEndTracker()
        for plan in plans:  # as the meeting opens a lane, less the connection
            engine = RealtimeSession(
                endpoint_for(settings, "realtime"), spec_for(plan), EngineOptions.from_settings(settings)
            )
            meeting.lanes[plan.key] = Lane(
                plan, engine, meeting, meeting.transcript, on_fatal=print, speech=tracker.since_now()
            )
        intakes = [lane.engine._input for lane in meeting.lanes.values()]  # type: ignore[attr-defined]

        def step(chunk: bytes) -> None:
            meeting._speaker_audio("a", chunk)

        def drain() -> None:  # what each connected link's writer takes, off the measured path
            for intake in intakes:
                while intake.next_chunk() is not None:
                    pass

        for i in range(1100):  # 22 s: every lane's input history is full, as in a meeting under way
            step(pcm[i % len(pcm)])
            drain()
        median = timed_each(pcm, step, between=drain)
        for lane in meeting.lanes.values():
            await lane.aclose()
        return median

    return statistics.median(asyncio.run(one_pass()) for _ in range(passes))


def isolated_stages(passes: int) -> dict[str, float]:
    import logging

    logging.disable(logging.WARNING)  # the fixture loops: its pts jump back between passes
    speech = speech_frames()
    silence = silence_frames(len(speech))
    packets = opus_packets(speech)
    handoff_loop, handoff_thread = stage_handoff(speech, passes)
    mixed = [stereo_frame(f.to_ndarray().reshape(-1, 2), i * FRAME) for i, f in enumerate(speech + silence)]
    return {
        "srtp_decrypt": stage_srtp(packets, passes),
        "rtp_parse": stage_rtp_parse(packets, passes),
        "jitter_buffer": stage_jitter(packets, passes),
        "opus_decode": stage_decode(packets, passes),
        "handoff_loop": handoff_loop,
        "handoff_thread": handoff_thread,
        "convert_speech": stage_convert(speech, passes),
        "convert_silence": stage_convert(silence, passes),
        "convert_dtx_keepalive": stage_convert(
            silence[:50] + silence_frames(len(speech), every=20, first=60), passes
        ),
        "audio_in_speech": stage_audio_in(speech, passes),
        "audio_in_silence": stage_audio_in(silence, passes),
        "audio_in_no_lane": stage_audio_in(mixed, passes, lane=False),
        "speech_tracker_per_lane": stage_speech_tracker(mixed, passes),
        **{
            f"speaker_{lanes}_lane{'s' if lanes > 1 else ''} (tracker + lane pushes)": if_the_tree_has_it(
                functools.partial(stage_speaker_lanes, mixed, passes, lanes)
            )
            for lanes in (1, 2, 4)
        },
    }


def if_the_tree_has_it(stage: Callable[[], float]) -> float:
    """A stage of parts an older tree does not have (the baseline's meeting tracked speech per lane,
    not per speaker) is not measured there: NaN, printed as n/a."""
    try:
        return stage()
    except (AttributeError, ImportError):
        return math.nan


# ---- loopback: a real PeerConnection into AudioIn -------------------------------------------------


class FixtureTrack(MediaStreamTrack):
    """The speech fixture then as long a pause of digital silence, looped, paced by a monotonic clock."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        speech = speech_frames()
        self._arrays = [f.to_ndarray().reshape(-1, 2) for f in speech]
        self._arrays += [np.zeros((FRAME, 2), dtype=np.int16)] * len(speech)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._n * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = stereo_frame(self._arrays[self._n % len(self._arrays)], self._n * FRAME)
        self._n += 1
        return frame


async def run_sender() -> None:
    """--sender: offer one audio track on stdout, read the answer on stdin, stream until stdin closes."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    pc.addTrack(FixtureTrack())
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}), flush=True)
    loop = asyncio.get_running_loop()
    answer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    await loop.run_in_executor(None, sys.stdin.read)  # until the receiver is done
    await pc.close()


# Stages of the receiving event-loop thread, by the function whose inclusive time they are.
PROFILE_STAGES: list[tuple[str, str, str]] = [
    ("ICE datagram in (socket -> queue)", "aioice/ice.py", "datagram_received"),
    ("DTLS transport per packet (all below)", "aiortc/rtcdtlstransport.py", "_recv_next"),
    ("  SRTP decrypt", "", "unprotect"),
    ("  RTP parse", "aiortc/rtp.py", "parse"),
    ("  receiver: stats, depayload, jitter buffer", "aiortc/rtcrtpreceiver.py", "_handle_rtp_packet"),
    ("decoder thread -> loop hand-off (queue put)", "asyncio/queues.py", "put"),
    ("AudioIn per frame (ours, all below)", "interpreter/audio_in.py", "_read"),
    ("  conversion to 24 kHz mono (ours)", "audio/inbound.py", "convert"),
]


def _is_idle(function: str) -> bool:
    return function.startswith("<method 'poll' of 'select.") or function.startswith("<method 'select' of")


def profile_stages(profile: cProfile.Profile, packets: int) -> dict[str, float]:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    # tottime over all functions is the whole thread, less the time it slept in the selector's poll.
    total = sum(entry[2] for (_, _, function), entry in stats.items() if not _is_idle(function))
    out = {"(event-loop thread, profiled)": total / packets * 1e6}
    for label, path, name in PROFILE_STAGES:
        cum = sum(
            entry[3]
            for (filename, _, function), entry in stats.items()
            if function == name and path in filename.replace(os.sep, "/")
        )
        out[label] = cum / packets * 1e6
    return out


async def run_loopback(seconds: float, profiled: bool) -> dict[str, float]:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from translator_bot.interpreter.audio_in import AudioIn

    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--sender",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert sender.stdin is not None and sender.stdout is not None
    pc = RTCPeerConnection()
    received = [0]
    audio_in = AudioIn(lambda pid, pcm: received.__setitem__(0, received[0] + len(pcm)), name_of=str)
    try:
        pc.on("track", lambda track: audio_in.start("sender", "a", track))
        offer = json.loads(await asyncio.wait_for(sender.stdout.readline(), 30))
        await pc.setRemoteDescription(RTCSessionDescription(**offer))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        sender.stdin.write((json.dumps(answer) + "\n").encode())
        await sender.stdin.drain()
        deadline = time.monotonic() + 30
        while audio_in.frames_heard.get("sender", 0) == 0:
            if time.monotonic() > deadline:
                raise SystemExit("loopback: no audio arrived within 30 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(WARM_UP_S)
        frames0 = audio_in.frames_heard["sender"]
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        thread0 = resource.getrusage(resource.RUSAGE_THREAD)
        profile = cProfile.Profile() if profiled else None
        if profile is not None:
            profile.enable()
        await asyncio.sleep(seconds)
        if profile is not None:
            profile.disable()
        thread1 = resource.getrusage(resource.RUSAGE_THREAD)
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        main_user = thread1.ru_utime - thread0.ru_utime
        main_sys = thread1.ru_stime - thread0.ru_stime
        main = main_user + main_sys
        packets = audio_in.frames_heard["sender"] - frames0
        if packets < seconds * 40:  # fewer than 80 % of the 50 packets a second: the run is not valid
            raise SystemExit(f"loopback: only {packets} packets in {seconds} s")
        process = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
        if profile is not None:
            return profile_stages(profile, packets)
        return {
            "loop_thread": main / packets * 1e6,
            "  of which in the kernel": main_sys / packets * 1e6,
            "other_threads": (process - main) / packets * 1e6,
            "process": process / packets * 1e6,
            "core_percent": process / seconds * 100,
        }
    finally:
        await audio_in.aclose()
        await pc.close()
        with contextlib.suppress(Exception):
            sender.stdin.close()
        try:
            await asyncio.wait_for(sender.wait(), 10)
        except TimeoutError:
            sender.kill()
            await sender.wait()


# ---- the driver -------------------------------------------------------------------------------------


def extract_tree(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "translator_bot"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def worker(tree: Path, args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"worker on {tree} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def print_table(title: str, rows: dict[str, tuple[list[float], list[float]]], unit: str) -> None:
    print(f"\n{title}")
    print(
        f"  {'stage':<48} {'before':>9} {'after':>9}  ({unit}, median of {len(next(iter(rows.values()))[0])})"
    )
    for label, (before, after) in rows.items():
        print(f"  {label:<48} {_figure(before):>9} {_figure(after):>9}")


def _figure(values: list[float]) -> str:
    value = statistics.median(values)
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="worker processes per tree (interleaved)")
    parser.add_argument("--passes", type=int, default=5, help="passes over the fixture per worker")
    parser.add_argument("--seconds", type=float, default=8.0, help="loopback measuring window (0: skip)")
    parser.add_argument("--baseline", default="perf-baseline", help="git ref measured as 'before'")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled loopback runs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.sender:
        asyncio.run(run_sender())
        return
    if args.worker:
        result: dict[str, Any] = {"stages": isolated_stages(args.passes)}
        if args.seconds > 0:
            result["loopback"] = asyncio.run(run_loopback(args.seconds, args.profile))
        print(json.dumps(result))
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    try:
        trees = {"before": extract_tree(args.baseline, tmp), "after": REPO}
        print(f"inbound path per 20 ms packet: before = {args.baseline}, after = this checkout", flush=True)
        results: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        profiles: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        common = ["--passes", str(args.passes), "--seconds", str(args.seconds)]
        for run in range(args.runs):
            for side, tree in trees.items():
                results[side].append(worker(tree, common))
            print(f"  run {run + 1}/{args.runs} done", flush=True)
        if args.seconds > 0 and not args.no_profile:
            for _ in range(max(1, args.runs // 2)):
                for side, tree in trees.items():
                    profiles[side].append(worker(tree, [*common, "--passes", "1", "--profile"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rows(key: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[list[float], list[float]]]:
        labels = runs["after"][0][key].keys()
        return {
            label: ([r[key][label] for r in runs["before"]], [r[key][label] for r in runs["after"]])
            for label in labels
        }

    print_table("isolated stages (aiortc's first, then ours)", rows("stages", results), "us per packet")
    if args.seconds > 0:
        print_table(
            f"loopback receiver, {args.seconds:.0f} s of speech and pauses",
            rows("loopback", results),
            "us per packet; core_percent: % of a core",
        )
        if profiles["after"]:
            print_table(
                "loopback receiver's event-loop thread under cProfile (inclusive)",
                rows("loopback", profiles),
                "us per packet, profiler-inflated",
            )


if __name__ == "__main__":
    main()
