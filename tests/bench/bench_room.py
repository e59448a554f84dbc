"""Room figures: join -> first remote frame (median of 10), and CPU of a bot with 2 feeds in and 2 out.

Run as `.venv/bin/python -m tests.bench.bench_room` (needs the `janus` package and network namespaces).
The simulated participants run in a child process so the CPU figure is the bot's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time

from translator_bot.system.netns import enter_private_network

JOINS = 10
CPU_SECONDS = 15.0


async def run_participants(url: str, room: int) -> None:
    from translator_bot.testbed.participant import SimParticipant, fixture_speech

    people = [
        SimParticipant(url, room, "Alice", "en", schedule=[fixture_speech("u1-en", 0.3)], loop=True),
        SimParticipant(url, room, "Beatriz", "es", schedule=[fixture_speech("u2-es", 0.3)], loop=True),
    ]
    for person in people:
        await person.join()
        await person.media_up.wait()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    for person in people:
        await person.close()


async def first_frame_after_join(url: str, room: int) -> float:
    from translator_bot.room.session import FeedTrackArrived, RoomSession

    started = time.monotonic()
    session = RoomSession(url=url, room=room)
    await session.join()
    try:
        async for event in session.events():
            if isinstance(event, FeedTrackArrived):
                await event.track.recv()
                return time.monotonic() - started
        raise RuntimeError("room closed before a feed arrived")
    finally:
        await session.leave()


async def cpu_with_two_in_two_out(url: str, room: int) -> tuple[float, int, int]:
    from translator_bot.room.session import FeedTrackArrived, RoomSession
    from translator_bot.testbed.participant import Recorder, ScheduleTrack, fixture_speech

    session = RoomSession(url=url, room=room)
    await session.join()
    recorders: list[Recorder] = []
    publications = []
    try:
        async for event in session.events():
            if isinstance(event, FeedTrackArrived):
                recorders.append(Recorder(event.track).start())
                publications.append(
                    await session.publish_feed(
                        ScheduleTrack([fixture_speech("u3-es", 0.3)], loop=True), event.participant, "es"
                    )
                )
                if len(recorders) == 2:
                    break
        for publication in publications:
            await publication.wait_connected()
        await asyncio.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.monotonic()
        frames0 = sum(r.recording.frames for r in recorders)
        await asyncio.sleep(CPU_SECONDS)
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        frames = sum(r.recording.frames for r in recorders) - frames0
        return cpu, frames, len(publications)
    finally:
        for recorder in recorders:
            await recorder.stop()
        await session.leave()


async def main() -> None:
    from translator_bot.testbed.janus import JanusServer

    async with JanusServer() as janus:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.bench_room",
            "--participants",
            janus.url,
            str(janus.room),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            if line.strip() != b"ready":
                raise RuntimeError(f"participants did not start: {line!r}")
            times = [await first_frame_after_join(janus.url, int(janus.room)) for _ in range(JOINS)]
            ms = sorted(t * 1000 for t in times)
            print(
                f"join -> first remote frame: median {statistics.median(ms):.0f} ms over {JOINS} joins "
                f"(min {ms[0]:.0f}, max {ms[-1]:.0f})"
            )
            cpu, frames, published = await cpu_with_two_in_two_out(janus.url, int(janus.room))
            print(
                f"bot CPU, subscribed to 2 feeds and publishing {published}: {cpu * 100:.1f}% of one core "
                f"({frames / CPU_SECONDS:.0f} frames/s received)"
            )
        finally:
            if child.stdin is not None:
                child.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.wait(), 10)
            if child.returncode is None:
                child.kill()
                await child.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", nargs=2, metavar=("URL", "ROOM"))
    args = parser.parse_args()
    if args.participants:
        asyncio.run(run_participants(args.participants[0], int(args.participants[1])))
    else:
        enter_private_network()
        asyncio.run(main())
