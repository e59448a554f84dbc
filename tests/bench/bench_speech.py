"""Speech tracking per 20 ms chunk: the energy detector every interpreted speaker's audio goes through.

    PYTHONPATH=$PWD .venv/bin/python -m tests.bench.bench_speech [--passes 7] [--chunks 3000] [--lanes 3]

Prints, as the median of --passes passes over --chunks chunks of 24 kHz speech and pauses (40 speech
chunks, then 20 of silence):
- the latency tracker's `feed` per chunk (interpreter/speech.py);
- the engine's input intake per chunk with its history full: the speech gate plus the append slicing
  (engine/intake.py);
- a speaker with --lanes lanes (stub engines): one tracker per lane, as a lane without a shared view
  runs, against the meeting's one tracker per speaker with a view per lane.
Before/after: run the file with PYTHONPATH at each tree in turn, e.g.
    PYTHONPATH=/path/to/before python /path/to/this/tests/bench/bench_speech.py
(a tree whose lanes take no shared view prints only the per-lane case).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from translator_bot.engine.intake import Intake
from translator_bot.interpreter import lane as lane_module
from translator_bot.interpreter.lane import Lane
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.speech import SpeechEndTracker


def chunk_cycle() -> list[bytes]:
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(480) * 3000).astype("<i2").tobytes()
    return [speech] * 40 + [bytes(960)] * 20


def per_chunk_us(setup: Callable[[], Callable[[bytes], None]], chunks: list[bytes], count: int) -> float:
    step = setup()
    started = time.perf_counter()
    for i in range(count):
        step(chunks[i % len(chunks)])
    return (time.perf_counter() - started) / count * 1e6


def tracker_step() -> Callable[[bytes], None]:
    tracker = SpeechEndTracker()

    def step(pcm: bytes) -> None:
        tracker.feed(pcm, time.monotonic())

    return step


def intake_step(chunks: list[bytes]) -> Callable[[], Callable[[bytes], None]]:
    def setup() -> Callable[[bytes], None]:
        intake = Intake("translate", 40, 20.0)

        def step(pcm: bytes) -> None:
            intake.push(pcm)
            while intake.next_chunk() is not None:
                pass

        for i in range(1100):  # 22 s: the 20 s history is full, as in a meeting under way
            step(chunks[i % len(chunks)])
        return step

    return setup


class _Engine:
    def send_audio(self, pcm: bytes, shared: object = None) -> None:
        pass


class _Transcript:
    def lane_opened(self, info: object) -> None:
        pass


def lanes_step(count: int, *, shared: bool) -> Callable[[], Callable[[bytes], None]]:
    def setup() -> Callable[[bytes], None]:
        tracker = SpeechEndTracker()
        plan: Any = SimpleNamespace(key=LaneKey("a", "es"))

        def lane() -> Lane:
            # Passed only when shared: a tree whose lanes take no view is measured per lane.
            view: dict[str, Any] = {"speech": tracker.since_now()} if shared else {}
            stub: Any = None
            return Lane(plan, _Engine(), stub, _Transcript(), on_fatal=print, **view)  # type: ignore[arg-type]

        lanes = [lane() for _ in range(count)]

        def step(pcm: bytes) -> None:
            if shared:
                tracker.feed(pcm, time.monotonic())
            for lane in lanes:
                lane.push_audio(pcm)

        return step

    return setup


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--chunks", type=int, default=3000)
    parser.add_argument("--lanes", type=int, default=3)
    args = parser.parse_args()
    lane_module.lane_info = lambda plan: None  # type: ignore[assignment,return-value]  # stub plans
    chunks = chunk_cycle()
    cases: dict[str, Callable[[], Callable[[bytes], None]]] = {
        "speech-end tracker feed": tracker_step,
        "engine intake (gate + appends), history full": intake_step(chunks),
        f"speaker with {args.lanes} lanes, a tracker per lane": lanes_step(args.lanes, shared=False),
    }
    if "speech" in inspect.signature(Lane).parameters:
        cases[f"speaker with {args.lanes} lanes, one shared tracker"] = lanes_step(args.lanes, shared=True)
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.passes):  # interleaved: a noisy machine slows every case alike
        for name, setup in cases.items():
            results[name].append(per_chunk_us(setup, chunks, args.chunks))
    print(f"us per 20 ms chunk, median of {args.passes} passes x {args.chunks} chunks")
    for name, values in results.items():
        print(f"  {name:<48} {statistics.median(values):7.1f}")


if __name__ == "__main__":
    main()
