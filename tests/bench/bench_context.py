"""Input tokens per response over a simulated 60-minute meeting, with and without the context bound.

Drives the `realtime` engine against the fake server: one recorded sentence every 15 s of meeting
time (silence in between, all of it streamed), sent faster than real time, waiting for each
response before the next turn. The fake counts tokens from the conversation it holds (about one
token per 40 ms of audio, one per 4 characters of text, instructions included), so a client that
does not bound its context shows input tokens growing with the meeting until the model's window
truncates it, and a bounded client shows them flat.

Run: .venv/bin/python -m tests.bench.bench_context [--minutes 60] [--turn-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from pydantic import SecretStr

from translator_bot.engine.base import LaneSpec, Usage
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import DEFAULT_CONTEXT_ITEMS, RealtimeSession
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fake.state import FakeOptions
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import Settings

SENTENCES = ["u1-en", "u2-en", "u3-en", "u4-en"]


async def run_meeting(
    minutes: float, turn_seconds: float, context_items: int | None
) -> list[tuple[float, Usage]]:
    fake = FakeRealtimeServer(options=FakeOptions(realtime_speed=40.0))
    await fake.start()
    settings = Settings(
        openai_api_key=SecretStr("sk-bench-local"), openai_base_url=fake.base_url, engine="realtime"
    )
    spec = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
    session = RealtimeSession(
        endpoint_for(settings, "realtime"),
        spec,
        EngineOptions.from_settings(settings),
        context_items=context_items,
    )
    clips = {uid: read_pcm(utterance(uid)).astype("<i2").tobytes() for uid in SENTENCES}
    usages: asyncio.Queue[Usage] = asyncio.Queue()

    async def consume() -> None:
        async for event in session.events():
            if isinstance(event, Usage):
                usages.put_nowait(event)

    results: list[tuple[float, Usage]] = []
    await session.start()
    consumer = asyncio.create_task(consume())
    try:
        turns = int(minutes * 60 / turn_seconds)
        for turn in range(turns):
            clip = clips[SENTENCES[turn % len(SENTENCES)]]
            gap = max(0, int(turn_seconds * 24_000) * 2 - len(clip))
            session.send_audio(clip + bytes(gap))
            usage = await asyncio.wait_for(usages.get(), 30)
            results.append(((turn + 1) * turn_seconds / 60, usage))
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await session.aclose()
        record = fake.state.sessions[0]
        problems = fake.state.all_violations()
        await fake.stop()
    print(
        f"  fake: {len(record.recognised)} utterances recognised, {record.items_dropped_by_retention} items "
        f"dropped by its own truncation, {len(problems)} client events failing validation"
    )
    return results


def report(label: str, results: list[tuple[float, Usage]], every_minutes: float) -> None:
    print(f"{label}")
    print("  minute  responses  input_tokens(last)  input_tokens(mean of last 10)")
    next_mark = every_minutes
    for index, (minute, usage) in enumerate(results):
        if minute + 1e-9 >= next_mark or index == len(results) - 1:
            window = [u.input_tokens for _, u in results[max(0, index - 9) : index + 1]]
            mean = sum(window) / len(window)
            print(f"  {minute:6.1f}  {index + 1:9d}  {usage.input_tokens:18d}  {mean:29.0f}")
            next_mark += every_minutes
    total = sum(u.input_tokens for _, u in results)
    print(f"  total input tokens over the meeting: {total}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--turn-seconds", type=float, default=15.0)
    parser.add_argument("--every", type=float, default=5.0, help="print a row every N simulated minutes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"simulated meeting: {args.minutes:.0f} min, one sentence every {args.turn_seconds:.0f} s\n")
    for label, bound in (
        (f"WITH context bound (last {DEFAULT_CONTEXT_ITEMS} items kept)", DEFAULT_CONTEXT_ITEMS),
        ("WITHOUT context bound (server default truncation only)", None),
    ):
        started = time.perf_counter()
        results = await run_meeting(args.minutes, args.turn_seconds, bound)
        report(label, results, args.every)
        print(f"  ({time.perf_counter() - started:.0f} s wall)\n")


if __name__ == "__main__":
    asyncio.run(main())
