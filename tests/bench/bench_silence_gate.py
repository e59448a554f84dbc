"""What the silence gate saves: input appends per lane-minute and the lanes' CPU, gate off vs on.

    python -m tests.bench.bench_silence_gate [--engine translate|realtime|both] [--seconds 60] [--runs 3]

A two-party meeting's lanes (Alice en->es, Beatriz es->en; with --engine both, each on both engines)
hear the two people talk in turns exactly as `bench_meeting capacity` makes them (a sentence, then
0.6 s + 1.4 x its length + 0.5 s before the next person's), at real-time pace in 20 ms room frames.
The fake server runs in its own process, so the CPU measured here is the lanes' own: the intake, the
JSON+base64 of each append and its socket write, reading the model's events (plus feeding the frames,
the same in both configurations). Runs alternate off/on (A B, B A, ...) after an uncounted warm-up;
the table shows each run, then medians. The fake counts the appends it received per session; every
run must also get every sentence translated, or the figures are not comparable and the bench fails.
No Janus: cheap to run, but not a whole bot (the room's audio path is the same in both configurations).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
from pydantic import SecretStr

from translator_bot.engine.base import EngineEvent, LaneSpec, TranslatedAudio, TranslationDone
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.engine.supervisor import SupervisedSession
from translator_bot.engine.translate import TranslateSession
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import EngineName, Settings
from translator_bot.testbed.fake_process import FakeProcess

SENTENCES = ["u1", "u2", "u3", "u4"]
PEOPLE = (("Alice", "en", "es"), ("Beatriz", "es", "en"))
FRAME_MS = 20
FRAME_BYTES = FRAME_MS * 48
KEY = "sk-bench-fake-0123456789"


def conversation(seconds: float) -> tuple[dict[str, bytes], int]:
    """Each person's audio for `seconds` (the capacity bench's turns, silence between them), and how
    many sentences were said."""
    total = int(seconds * 1000) * 24
    pcm = {name: np.zeros(total, dtype=np.int16) for name, _, _ in PEOPLE}
    at_ms, turn = 1000.0, 0
    while True:
        name, lang, _ = PEOPLE[turn % 2]
        uid = f"{SENTENCES[turn // 2 % len(SENTENCES)]}-{lang}"
        voice = read_pcm(utterance(uid)).astype(np.int16)
        start = int(at_ms) * 24
        if start + len(voice) > total - 8000 * 24:  # leave the last translation time to come out
            break
        pcm[name][start : start + len(voice)] = voice
        duration_ms = utterance(uid).duration_ms
        at_ms += duration_ms + 600 + 1.4 * duration_ms + 500
        turn += 1
    return {name: data.astype("<i2").tobytes() for name, data in pcm.items()}, turn


@dataclass(frozen=True)
class RunFigures:
    appends_per_lane_minute: float
    audio_s_per_lane_minute: float
    cpu_percent: float
    translations: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fake_sessions(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with http.get(f"{base}/_fake/state") as response:
        state: dict[str, Any] = await response.json()
    sessions: list[dict[str, Any]] = state["sessions"]
    return sessions


async def one_run(
    base: str, engines: list[EngineName], gate: bool, audio: dict[str, bytes], expected: int
) -> RunFigures:
    lanes: list[tuple[str, SupervisedSession[Any]]] = []
    for engine in engines:
        s = Settings(
            openai_api_key=SecretStr(KEY), openai_base_url=f"{base}/v1", engine=engine, silence_gate=gate
        )
        options = EngineOptions.from_settings(s)
        cls = TranslateSession if engine == "translate" else RealtimeSession
        for name, source, target in PEOPLE:
            spec = LaneSpec(
                f"{name}->{target}", name, parse_language(source), "other", parse_language(target)
            )
            lanes.append((name, cls(endpoint_for(s, engine), spec, options)))
    events: list[list[EngineEvent]] = [[] for _ in lanes]

    async def collect(session: SupervisedSession[Any], out: list[EngineEvent]) -> None:
        async for event in session.events():
            out.append(event)

    async with aiohttp.ClientSession() as http:
        known = {s["id"] for s in await fake_sessions(http, base)}
        await asyncio.gather(*(session.start() for _, session in lanes))
        readers = [
            asyncio.create_task(collect(session, out))
            for (_, session), out in zip(lanes, events, strict=True)
        ]
        loop = asyncio.get_running_loop()
        frames = len(next(iter(audio.values()))) // FRAME_BYTES
        cpu0, t0 = time.process_time(), loop.time()
        try:
            for frame in range(frames):
                for name, session in lanes:
                    session.send_audio(audio[name][frame * FRAME_BYTES : (frame + 1) * FRAME_BYTES])
                await asyncio.sleep(max(0.0, t0 + (frame + 1) * FRAME_MS / 1000 - loop.time()))
            cpu = time.process_time() - cpu0
            elapsed = loop.time() - t0
        finally:
            await asyncio.gather(*(session.aclose() for _, session in lanes))
            await asyncio.gather(*readers, return_exceptions=True)
        new = [s for s in await fake_sessions(http, base) if s["id"] not in known]
    translated = 0
    for out in events:
        with_audio = {e.item_id for e in out if isinstance(e, TranslatedAudio)}
        translated += sum(1 for e in out if isinstance(e, TranslationDone) and e.item_id in with_audio)
    if translated < expected:
        raise SystemExit(
            f"only {translated} of {expected} sentences came back translated: figures not comparable"
        )
    lane_minutes = len(lanes) * elapsed / 60
    return RunFigures(
        sum(s["appends_received"] for s in new) / lane_minutes,
        sum(s["audio_ms_received"] for s in new) / 1000 / lane_minutes,
        100 * cpu / elapsed,
        translated,
    )


async def bench(args: argparse.Namespace) -> None:
    engines: list[EngineName] = ["translate", "realtime"] if args.engine == "both" else [args.engine]
    async with FakeProcess() as fake:
        base = fake.base_url.removesuffix("/v1")
        audio, sentences = conversation(args.seconds)
        expected = sentences * len(engines)
        lanes = f"{len(engines) * 2} lanes ({', '.join(engines)})"
        print(f"{lanes}, {args.seconds:.0f} s of talking in turns, {sentences} sentences")
        print(
            f"{'run':>7} {'gate':<4} {'appends/lane-min':>17} {'audio s/lane-min':>17} "
            f"{'lanes CPU %':>12} {'translated':>10}"
        )
        results: dict[bool, list[RunFigures]] = {False: [], True: []}
        order = [("warm-up", True)] if args.warmup else []
        for run in range(args.runs):
            pair = (False, True) if run % 2 == 0 else (True, False)
            order += [(str(run + 1), gate) for gate in pair]
        for name, gate in order:
            got = await one_run(base, engines, gate, audio, expected)
            if name != "warm-up":
                results[gate].append(got)
            print(
                f"{name:>7} {'on' if gate else 'off':<4} {got.appends_per_lane_minute:>17.0f} "
                f"{got.audio_s_per_lane_minute:>17.1f} {got.cpu_percent:>12.2f} {got.translations:>10}",
                flush=True,
            )
    print(f"\nmedians of {args.runs} runs per configuration (load average {os.getloadavg()[0]:.1f}):")
    print(f"{'figure':<34} {'gate off':>10} {'gate on':>10} {'change':>8}")
    for label, attr in (
        ("input appends per lane-minute", "appends_per_lane_minute"),
        ("input audio sent, s per lane-minute", "audio_s_per_lane_minute"),
        ("lanes' CPU, % of a core", "cpu_percent"),
    ):
        off = statistics.median(float(getattr(f, attr)) for f in results[False])
        on = statistics.median(float(getattr(f, attr)) for f in results[True])
        print(f"{label:<34} {off:>10.2f} {on:>10.2f} {100 * (on - off) / off:>+7.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["translate", "realtime", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60.0, help="talking time per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration; the table shows medians")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
