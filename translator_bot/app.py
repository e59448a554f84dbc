"""The `join` command: wires room -> audio in -> engine -> playout -> room for one meeting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import av
from aiortc.mediastreams import MediaStreamError

from translator_bot import metrics
from translator_bot.audio.inbound import InboundConverter
from translator_bot.errors import ExitCode
from translator_bot.room.session import (
    FeedId,
    FeedTrackArrived,
    FeedTrackGone,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RoomClosed,
    RoomSession,
)
from translator_bot.settings import Settings

log = logging.getLogger(__name__)


def run_join(settings: Settings, meeting_id: str, *, create_room: bool = False) -> ExitCode:
    """Join the meeting and follow it until SIGTERM/SIGINT (exit 0) or the room is lost (RoomError)."""
    return asyncio.run(_join(settings, meeting_id, create_room))


async def _join(settings: Settings, meeting_id: str, create_room: bool) -> ExitCode:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    room = RoomSession.from_settings(settings, meeting_id, create_room=create_room)
    try:
        await room.join()
        follower = asyncio.create_task(_follow(room), name="follow-room")
        stopper = asyncio.create_task(stop.wait(), name="wait-signal")
        await asyncio.wait({follower, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("stopping: leaving meeting %s", room.room_id)
        await room.leave()
        stopper.cancel()
        await follower
    finally:
        await room.leave()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if room.error is not None:
        raise room.error
    return ExitCode.OK


async def _follow(room: RoomSession) -> None:
    readers: dict[FeedId, asyncio.Task[None]] = {}
    try:
        async for event in room.events():
            if isinstance(event, ParticipantJoined | ParticipantUpdated):
                p = event.participant
                role = " (interpreter, ignored)" if p.is_interpreter else ""
                log.info("participant %s: %s speaks %s%s", p.id, p.name, p.language.display, role)
            elif isinstance(event, ParticipantLeft):
                log.info("participant %s (%s) left", event.participant.id, event.participant.name)
            elif isinstance(event, FeedTrackArrived):
                readers[event.feed] = asyncio.create_task(_read_feed(event), name=f"read-{event.feed}")
            elif isinstance(event, FeedTrackGone):
                task = readers.pop(event.feed, None)
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            elif isinstance(event, RoomClosed):
                return
    finally:
        for task in readers.values():
            task.cancel()
        for task in readers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _read_feed(event: FeedTrackArrived) -> None:
    """Until the interpretation lanes consume it, convert each feed and count what arrives."""
    converter = InboundConverter()
    frames = 0
    pcm_bytes = 0
    try:
        while True:
            frame = await event.track.recv()
            if not isinstance(frame, av.AudioFrame):
                continue
            frames += 1
            metrics.FRAMES_IN.inc()
            pcm_bytes += len(converter.convert(frame))
    except MediaStreamError:
        pass
    finally:
        log.info(
            "feed %s from %s: %d frames received, %.1f s of 24 kHz audio",
            event.feed,
            event.participant.name,
            frames,
            pcm_bytes / 48_000,
        )
