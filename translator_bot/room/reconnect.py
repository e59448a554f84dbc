"""Getting back into the room after the connection to the room server dropped: the attempts, paced and
bounded by `lifecycle`'s pure rules (backoff with jitter, a window after which the bot gives up)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from translator_bot.errors import RoomError
from translator_bot.room.control import RoomGone
from translator_bot.room.janus import JanusError
from translator_bot.room.lifecycle import next_attempt_at, reconnect_delay

log = logging.getLogger("translator_bot.room.session")  # one logger for everything a room session says


async def reconnect(attempt_once: Callable[[], Awaitable[str]], reason: str, window_s: float) -> str:
    """Run `attempt_once` until it succeeds (it returns how it got back, which is logged and returned).
    RoomGone (the meeting is over) ends the attempts at once; after `window_s` seconds RoomError."""
    loop = asyncio.get_running_loop()
    lost_at = loop.time()
    log.warning(
        "lost the connection to the room server (%s); reconnecting (giving up after %g s)", reason, window_s
    )
    attempt, last_error = 0, reason
    while True:
        try:
            how = await attempt_once()
            break
        except RoomGone:
            raise
        except JanusError as exc:
            last_error = exc.reason
            log.info("reconnecting to the room server failed: %s", exc.reason)
        except Exception as exc:
            # A bug must not leave the bot in a room it can no longer follow: count it as a
            # failed attempt, and the window still bounds the whole.
            last_error = f"{type(exc).__name__}: {exc}"
            log.exception("reconnecting to the room server failed")
        attempt += 1
        now = loop.time()
        at = next_attempt_at(lost_at, now, reconnect_delay(attempt), window_s)
        if at is None:
            raise RoomError(f"lost the room server: {reason}; gave up after {window_s:g} s ({last_error})")
        await asyncio.sleep(at - now)
    log.info("%s after %.1f s", how, loop.time() - lost_at)
    return how
