"""The offer/answer exchange with the VideoRoom plugin, in one place for the bot and the testbed.

Two plain functions, the shape of aiortc's own Janus example: `publish()` offers what the caller put
on its PeerConnection and applies the room server's answer; `subscribe()` asks for feeds, applies the
room server's offer and answers it. The caller owns the PeerConnection and the plugin handle and closes
them on every path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from translator_bot.room import videoroom
from translator_bot.room.janus import JanusError, JanusHandle, JsonObject, PluginReply
from translator_bot.room.metadata import ParticipantId
from translator_bot.room.peers import from_jsep, to_jsep

_NO_SUCH_FEED_RETRY_S = 0.25


async def publish(
    handle: JanusHandle,
    pc: RTCPeerConnection,
    *,
    display: str | None,
    descriptions: Sequence[str] = (),
    edit_offer: Callable[[str], str] | None = None,
) -> list[str]:
    """Publish the send-only transceivers (and data channel) already on `pc` through a handle that
    joined as a publisher. `descriptions[i]` labels the i-th transceiver's stream; `edit_offer`
    rewrites the offer's SDP before it is set (a client's own codec parameters). Returns the mids
    in transceiver order."""
    offer = await pc.createOffer()
    if edit_offer is not None:
        offer = RTCSessionDescription(sdp=edit_offer(offer.sdp), type=offer.type)
    await pc.setLocalDescription(offer)
    mids = [t.mid or str(i) for i, t in enumerate(pc.getTransceivers())]
    reply = await videoroom.publish(
        handle,
        to_jsep(pc.localDescription),
        descriptions=list(zip(mids, descriptions, strict=False)),
        display=display,
    )
    if reply.jsep is None:
        raise JanusError(0, "the room server accepted the feed without an answer")
    await pc.setRemoteDescription(from_jsep(reply.jsep))
    return mids


async def subscribe(
    handle: JanusHandle,
    pc: RTCPeerConnection,
    room: ParticipantId,
    streams: list[JsonObject],
    *,
    private_id: int | None = None,
    attempts: int = 1,
    data_channel: str | None = None,
    on_channel: Callable[[RTCDataChannel], None] | None = None,
) -> RTCDataChannel | None:
    """Receive `streams` on `pc` (set its `track` listener first). A 428 (the feed's media is not up
    yet, or it just went) is retried up to `attempts` times in all. With `data_channel`, a channel of
    that label is opened when the offer carries data (VideoRoom relays data only to a subscriber that
    opened a channel of its own), handed to `on_channel` before the answer goes out, and returned."""
    reply: PluginReply | None = None
    for attempt in range(attempts):
        try:
            reply = await videoroom.join_subscriber(handle, room, streams, private_id=private_id)
            break
        except JanusError as exc:
            if exc.code != videoroom.ERR_NO_SUCH_FEED or attempt == attempts - 1:
                raise
            await asyncio.sleep(_NO_SUCH_FEED_RETRY_S * (attempt + 1))
    if reply is None or reply.jsep is None:
        raise JanusError(0, "the room server answered the subscription without an offer")
    await pc.setRemoteDescription(from_jsep(reply.jsep))
    channel: RTCDataChannel | None = None
    if data_channel is not None and "m=application" in str(reply.jsep.get("sdp", "")):
        channel = pc.createDataChannel(data_channel)
        if on_channel is not None:
            on_channel(channel)
    await pc.setLocalDescription(await pc.createAnswer())
    await videoroom.start(handle, to_jsep(pc.localDescription))
    return channel
