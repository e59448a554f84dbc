"""One audio feed the bot publishes into the room: its own room participant, PeerConnection and labels.

A `PublishedFeed` outlives the room connection: after a re-join the session publishes it again (a new
participant id) with the same track and labels, and a relabel made while the room was away is applied
on return. The session it belongs to is seen only through the small `FeedHost` interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCRtpCodecCapability, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from translator_bot.errors import RoomError
from translator_bot.languages import Language, parse_language
from translator_bot.room import negotiation, videoroom
from translator_bot.room.janus import EventListener, JanusConnectionLost, JanusError, JanusHandle, JsonObject
from translator_bot.room.metadata import (
    Listeners,
    ParticipantId,
    interpreter_description,
    interpreter_display,
    listener_ids,
)
from translator_bot.room.peers import IceConfig, close_quietly, new_peer_connection

# `translator-bot web` believes the "publishing"/"unpublished" lines only from the room session's
# logger (web/launcher.py): the feeds log under it.
log = logging.getLogger("translator_bot.room.session")


def as_language(value: Language | str) -> Language:
    return value if isinstance(value, Language) else parse_language(value)


def opus_only() -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    return [c for c in codecs if c.mimeType.lower() == "audio/opus"]


class FeedHost(Protocol):
    """What a feed needs of the room session it is published in."""

    @property
    def display_name(self) -> str: ...

    @property
    def ice(self) -> IceConfig: ...

    @property
    def online(self) -> bool: ...

    async def join_feed_participant(
        self, listener: EventListener, display: str
    ) -> tuple[JanusHandle, ParticipantId]:
        """A new room participant of the bot's for one feed (JanusConnectionLost while offline)."""
        ...

    def forget_feed(self, feed: PublishedFeed) -> None: ...


class FeedRelay(MediaStreamTrack):
    """What one PeerConnection sends of a published track.

    aiortc stops the track a sender was given when that sender ends (its PeerConnection closed or
    hung up by the server), so each PeerConnection gets its own relay and the feed's own track (the
    meeting's playout) lives on to be sent by the next one after a re-publish."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._source.recv()


class PublishedFeed:
    """One audio feed the bot publishes, with its own room participant and display name."""

    def __init__(
        self, host: FeedHost, track: MediaStreamTrack, display: str, description: str, data: bool
    ) -> None:
        self._host = host
        self.track = track
        self.display = display
        self.description = description
        self._data = data
        self.participant_id: ParticipantId | None = None
        self._handle: JanusHandle | None = None
        self._pc: RTCPeerConnection | None = None
        self._relay: FeedRelay | None = None
        self._channel: RTCDataChannel | None = None
        self._mid = "0"
        self._published: tuple[str, str] | None = None  # the labels the room server has
        self._lock = asyncio.Lock()
        self.publish_count = 0
        self.media_up = asyncio.Event()
        self.closed = False
        self._lost: str | None = None

    @property
    def lost_reason(self) -> str | None:
        """Why the room no longer carries this feed (None: it does, as far as the bot can tell)."""
        if (
            self._lost is None
            and not self.closed
            and self._pc is not None
            and self._pc.connectionState == "failed"
        ):
            self._lost = "its connection to the room server failed"
        return self._lost

    def lost(self, reason: str) -> None:
        if self._lost is None and not self.closed:
            self._lost = reason
            log.warning("the feed %r is gone: %s", self.display, reason)

    def on_message(self, message: JsonObject) -> None:
        """An event on the feed's plugin handle."""
        if message.get("janus") == "webrtcup":
            self.media_up.set()
        elif message.get("janus") == "hangup" and not self.closed:
            self.lost(f"the room server hung up the feed ({message.get('reason', 'no reason')})")

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            await self.media_up.wait()

    def send_data(self, text: str) -> bool:
        """Send text (e.g. a caption) to the feed's subscribers; False if the data channel is not open."""
        if self.closed or self._channel is None or self._channel.readyState != "open":
            return False
        try:
            self._channel.send(text)
        except Exception:
            log.debug("data channel send failed", exc_info=True)
            return False
        return True

    async def relabel(self, for_participant: Listeners, language: Language | str) -> None:
        """Point the feed at a renamed listener or a new language without re-publishing. With the room
        away it is applied when the room is back."""
        lang = as_language(language)
        self.display = interpreter_display(self._host.display_name, for_participant, lang)
        self.description = interpreter_description(listener_ids(for_participant), lang)
        if not self._host.online:
            return
        with contextlib.suppress(JanusConnectionLost):
            await self.ensure()

    async def ensure(self) -> None:
        """Published, with the current labels, on the room's current session."""
        async with self._lock:
            if self.closed:
                return
            if self._handle is None:
                await self._bind()
                if self.closed:  # closed while it was being published
                    await self.unbind()
                    return
            labels = (self.display, self.description)
            if self._published != labels:
                assert self._handle is not None
                await videoroom.configure(
                    self._handle, descriptions=[(self._mid, labels[1])], display=labels[0]
                )
                self._published = labels

    async def _bind(self) -> None:
        labels = (self.display, self.description)
        self.media_up.clear()
        handle, pid = await self._host.join_feed_participant(self.on_message, labels[0])
        relay = FeedRelay(self.track)
        pc = new_peer_connection(self._host.ice)
        try:
            transceiver = pc.addTransceiver(relay, direction="sendonly")
            # The playout track hands its sender ready-made Opus packets, which are sent as they are
            # whatever codec was negotiated: offer Opus alone, so that a room that cannot take it
            # refuses the feed instead of forwarding Opus bytes labelled as another codec.
            transceiver.setCodecPreferences(opus_only())
            channel = pc.createDataChannel("captions") if self._data else None
            mids = await negotiation.publish(handle, pc, display=labels[0], descriptions=[labels[1]])
        except BaseException:
            relay.stop()
            await close_quietly(pc)
            await handle.detach()
            raise
        self._handle, self._pc, self._relay, self._channel, self._mid = handle, pc, relay, channel, mids[0]
        self.participant_id = pid
        self._published = labels
        self.publish_count += 1
        # `translator-bot web` reads this line (and "unpublished ... (participant N)") to tell its page
        # which feeds are the real interpreter's: a re-publish after a re-join has a new participant id.
        verb = "publishing" if self.publish_count == 1 else "re-published"
        log.info("%s %r as participant %s", verb, labels[0], pid)

    async def unbind(self) -> None:
        """Forget the room participant of a session that is gone (Janus unpublished it already)."""
        handle, pc, relay = self._handle, self._pc, self._relay
        if handle is not None:
            log.info("unpublished %r (participant %s)", self.display, self.participant_id)
        self._handle = self._pc = self._relay = self._channel = None
        self._published = None
        if relay is not None:
            relay.stop()
        if pc is not None:
            await close_quietly(pc)
        if handle is not None:
            await handle.detach()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._host.forget_feed(self)
        handle = self._handle
        if handle is not None and handle.session.linked:
            with contextlib.suppress(JanusError):
                await videoroom.leave(handle)
        await self.unbind()


# The bot's own feed that the room took away, by the event that says so.
_FEED_TAKEN = {
    videoroom.FeedUnpublished: "unpublished by the room server",
    videoroom.ParticipantKicked: "kicked out of the meeting",
    videoroom.ParticipantLeaving: "removed from the meeting",
}


class PublishedFeeds:
    """The feeds one room session publishes."""

    def __init__(self) -> None:
        self._feeds: set[PublishedFeed] = set()

    def __iter__(self) -> Iterator[PublishedFeed]:
        return iter(list(self._feeds))

    def discard(self, feed: PublishedFeed) -> None:
        self._feeds.discard(feed)

    async def publish(
        self,
        host: FeedHost,
        track: MediaStreamTrack,
        for_participant: Listeners,
        language: Language,
        *,
        data: bool,
        wait_online: Callable[[], Awaitable[None]],
    ) -> PublishedFeed:
        """Publish `track` as a new feed for one listener and language, waiting out a room connection
        being recovered (RoomError if it fails)."""
        display = interpreter_display(host.display_name, for_participant, language)
        description = interpreter_description(listener_ids(for_participant), language)
        feed = PublishedFeed(host, track, display, description, data)
        self._feeds.add(feed)
        try:
            while True:
                await wait_online()
                try:
                    await feed.ensure()
                    return feed
                except JanusConnectionLost:
                    continue  # the room loop recovers the connection; try again once it has
        except BaseException as exc:
            self._feeds.discard(feed)
            feed.closed = True
            await feed.unbind()
            if isinstance(exc, JanusError):
                raise RoomError(f"cannot publish the feed {feed.display!r}: {exc.reason}") from None
            raise

    def taken(self, event: videoroom.VideoRoomEvent, control_id: ParticipantId | None) -> bool:
        """Marks one of the feeds lost when the room unpublishes or kicks it."""
        reason = _FEED_TAKEN.get(type(event))
        pid = getattr(event, "id", None)
        if reason is None or pid == control_id:
            return False
        for feed in self._feeds:
            if feed.participant_id == pid:
                feed.lost(reason)
                return True
        return False

    async def republish(self) -> None:
        """Back in the room: every feed published again (a no-op for those the room kept)."""
        for feed in self:
            try:
                await feed.ensure()
            except JanusConnectionLost:
                return  # dropped again: the next loss is recovered in turn
            except JanusError as exc:
                log.error("cannot re-publish the feed %r: %s", feed.display, exc.reason)

    async def unbind(self) -> None:
        """The room server session is gone with every feed's participant in it."""
        for feed in self:
            await feed.unbind()

    async def close(self) -> None:
        for feed in self:
            with contextlib.suppress(Exception):
                await feed.aclose()
