"""Getting back into the room after the connection to the room server dropped: one attempt (`get_back`)
and the attempts, paced and bounded by `lifecycle`'s pure rules (backoff with jitter, a window after
which the bot gives up)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from translator_bot.errors import RoomError
from translator_bot.room import videoroom
from translator_bot.room.control import ControlLink, RoomGone
from translator_bot.room.janus import JanusError, JanusSessionGone
from translator_bot.room.lifecycle import next_attempt_at, reconnect_delay
from translator_bot.room.publication import PublishedFeeds
from translator_bot.room.subscriptions import Subscriptions

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


async def get_back(
    link: ControlLink,
    feeds: Subscriptions,
    published: PublishedFeeds,
    caught_up: Callable[[videoroom.JoinedRoom], None],
) -> str:
    """One attempt: claim the Janus session back, or join the meeting anew. `caught_up` gets the room's
    full list of participants as it is now (the events of the gap are lost). Returns how it got back."""
    session = link.session
    if session is not None and not session.closed:
        try:
            await link.reclaim()
        except JanusSessionGone:
            log.info("the room server no longer has the bot's session: joining the meeting again")
        else:
            joined = await link.replace_control()
            feeds.drop_lost()
            caught_up(joined)
            return f"reclaimed the room server session {session.id} (same feeds and subscriptions)"
    # Everything in the old Janus session went with it: receive every feed again; the bot's own feeds
    # are re-published once online.
    feeds.drop_all()
    await published.unbind()
    caught_up(await link.rejoin())
    return f"rejoined meeting {link.room_id} as participant {link.participant_id}"
