"""Reconnects against a model server that accepts every connection and closes it at once.

Each reconnect re-sends the session configuration and replays audio, which is billed; a client whose
backoff starts afresh at every drop reconnects about twice a second for as long as the fault lasts.
Prints, per run, how many connections the realtime engine opened in the window, and the median.

Run: .venv/bin/python -m tests.bench.bench_reconnect [--seconds 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics

from tests.unit.scripted_ws import ScriptedConn, ScriptedServer, silence
from tests.unit.test_engine_realtime import make


async def accept_then_close(conn: ScriptedConn) -> None:
    await conn.session_updated()
    await conn.ws.close()


async def connections_in(seconds: float) -> int:
    server = ScriptedServer([accept_then_close])
    await server.start()
    session = make(server)
    try:
        await session.start()
        session.send_audio(silence(200))
        await asyncio.sleep(seconds)
        return len(server.conns)
    finally:
        await session.aclose()
        await server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    counts = [await connections_in(args.seconds) for _ in range(args.runs)]
    print(
        f"connections in {args.seconds:g} s to a server that accepts then closes: {counts}, "
        f"median {statistics.median(counts):g}"
    )


if __name__ == "__main__":
    asyncio.run(main())
