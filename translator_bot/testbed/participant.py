"""A simulated meeting participant: an aiortc peer that speaks recorded fixtures and records what it hears.

It joins a VideoRoom under a name and a language (display `Name [lang]` and/or a description JSON),
publishes one audio track that plays a schedule of 24 kHz recordings (upsampled to 48 kHz) with pauses
and silence in between, and can change language, leave and rejoin, and subscribe to other feeds.
Every utterance it speaks and every frame it hears is stamped with `time.monotonic()`, so tests and
benchmarks can measure latency end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from translator_bot.languages import Language, parse_language
from translator_bot.room import negotiation, videoroom
from translator_bot.room.janus import JanusHandle, JanusSession, JsonObject
from translator_bot.room.metadata import (
    ParticipantId,
    feed_is_for,
    parse_description,
    participant_description,
    participant_display,
)
from translator_bot.room.peers import IceConfig, close_quietly, new_peer_connection
from translator_bot.testbed.dtx import DtxOpusTrack
from translator_bot.testbed.recording import Recorder, Recording, best_envelope_match, envelope
from translator_bot.testbed.schedule import (
    FRAME_SAMPLES,
    RATE,
    ScheduleTrack,
    Speech,
    SpokenUtterance,
    fixture_speech,
    upsample_24k_to_48k,
)

log = logging.getLogger(__name__)

Declare = Literal["display", "description", "both"]


@dataclass
class Listening:
    """A subscription of a simulated participant to one feed."""

    feed: ParticipantId
    handle: JanusHandle
    pc: RTCPeerConnection
    recorders: list[Recorder] = field(default_factory=list)
    messages: list[tuple[float, str]] = field(default_factory=list)
    channel: RTCDataChannel | None = None
    _track_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def recording(self) -> Recording:
        if not self.recorders:
            return Recording()
        return self.recorders[0].recording

    async def wait_track(self, timeout_s: float) -> Recorder:
        async with asyncio.timeout(timeout_s):
            await self._track_arrived.wait()
        return self.recorders[0]

    async def close(self) -> None:
        for recorder in self.recorders:
            await recorder.stop()
        await close_quietly(self.pc)
        await self.handle.detach()


class SimParticipant:
    def __init__(
        self,
        url: str,
        room: ParticipantId,
        name: str,
        language: str,
        *,
        declare: Declare = "both",
        schedule: Sequence[Speech] = (),
        loop: bool = False,
        publish: bool = True,
        description: str | None = None,
        api_secret: str | None = None,
        ice: IceConfig | None = None,
        audio_streams: int = 1,
        dtx: bool = False,
    ) -> None:
        self.url = url
        self.room = room
        self.name = name
        self.language: Language = parse_language(language)
        self.declare = declare
        self.schedule = list(schedule)
        self.loop = loop
        self.publish_audio = publish
        self.description = description  # a raw stream description instead of the name/lang JSON
        self.api_secret = api_secret
        self.ice = ice or IceConfig()
        # More than one audio stream (a careless or hostile client): the extra ones play the same
        # schedule, each from its own track.
        self.audio_streams = audio_streams
        # Ask for Opus DTX in the offer, as a web client must for VideoRoom to negotiate it (only in a
        # room with `opus_dtx`, and Chrome's own offers do not ask: clients add `usedtx=1` themselves).
        self.ask_dtx = dtx
        self.extra_tracks: list[ScheduleTrack] = []
        self.id: ParticipantId | None = None
        self.dtx = False  # the room's answer agreed to Opus DTX: silence is sent as keep-alives only
        self.sender: _SwitchTrack | None = None
        self.private_id: int | None = None
        self.track: ScheduleTrack | None = None
        self.tracks_spoken: list[ScheduleTrack] = []
        self.publishers: dict[ParticipantId, videoroom.PublisherInfo] = {}
        self.events: list[tuple[float, videoroom.VideoRoomEvent]] = []
        # Publishers an event told about while the join request was in flight: newer than the join
        # answer's list, which must not overwrite them.
        self._announced_while_joining: set[ParticipantId] = set()
        self.joined_at: float | None = None
        self.media_up = asyncio.Event()
        self._session: JanusSession | None = None
        self._handle: JanusHandle | None = None
        self._pc: RTCPeerConnection | None = None
        self._audio_mid: str | None = None
        self._extra_mids: list[str] = []
        self._changed = asyncio.Event()
        self._listenings: list[Listening] = []

    # --- identity ----------------------------------------------------------------------------------

    @property
    def display(self) -> str:
        if self.declare in ("display", "both"):
            return participant_display(self.name, self.language)
        return self.name

    def _description_texts(self) -> list[str]:
        """The description of each published stream, in transceiver order (none: not declared)."""
        if self.description is not None:
            return [self.description]
        if self.declare in ("description", "both"):
            return [participant_description(self.name, self.language)] * self.audio_streams
        return []

    def _descriptions(self) -> list[tuple[str, str]]:
        if self._audio_mid is None:
            return []
        mids = [self._audio_mid, *self._extra_mids]
        return list(zip(mids, self._description_texts(), strict=False))

    @property
    def spoken(self) -> list[Any]:
        """Every utterance spoken so far, across rejoins."""
        return [u for track in self.tracks_spoken for u in track.spoken]

    # --- room events -------------------------------------------------------------------------------

    def _on_event(self, message: JsonObject) -> None:
        kind = message.get("janus")
        if kind == "webrtcup":
            self.media_up.set()
            return
        plugindata = message.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            return
        now = time.monotonic()
        for event in videoroom.parse_room_event(data):
            self.events.append((now, event))
            if isinstance(event, videoroom.PublishersAnnounced):
                for pub in event.publishers:
                    self.publishers[pub.id] = pub
                    self._announced_while_joining.add(pub.id)
            elif isinstance(event, (videoroom.FeedUnpublished, videoroom.ParticipantLeaving)):
                self.publishers.pop(event.id, None)
                self._announced_while_joining.add(event.id)
        self._changed.set()

    async def wait_for_publisher(
        self, predicate: Callable[[videoroom.PublisherInfo], bool], timeout_s: float = 10.0
    ) -> videoroom.PublisherInfo:
        async with asyncio.timeout(timeout_s):
            while True:
                for pub in self.publishers.values():
                    if predicate(pub):
                        return pub
                self._changed.clear()
                await self._changed.wait()

    def is_my_interpreter(self, pub: videoroom.PublisherInfo) -> bool:
        for stream in pub.streams:
            described = parse_description(stream.description)
            if described and self.id is not None and feed_is_for(described, self.id):
                return True
        return False

    # --- lifecycle ---------------------------------------------------------------------------------

    async def join(self) -> ParticipantId:
        self._session = await JanusSession.connect(self.url, api_secret=self.api_secret)
        self._handle = await self._session.attach(videoroom.PLUGIN, self._on_event)
        self._announced_while_joining.clear()
        joined = await videoroom.join_publisher(self._handle, self.room, self.display)
        self.joined_at = time.monotonic()
        self.id, self.private_id = joined.id, joined.private_id
        # An event that arrived with the join answer (a feed relabelled for this very participant, say)
        # is handled before this coroutine resumes: the answer's older list only fills in the rest.
        for pub in joined.publishers:
            if pub.id not in self._announced_while_joining:
                self.publishers[pub.id] = pub
        if self.publish_audio:
            await self._publish()
        return joined.id

    async def _publish(self) -> None:
        assert self._handle is not None
        self.media_up.clear()
        self._pc = new_peer_connection(self.ice)
        self.track = ScheduleTrack(self.schedule, loop=self.loop)
        self.tracks_spoken.append(self.track)
        # What the first track sends is decided once the answer is in (DTX or not), before any frame.
        self.sender = _SwitchTrack(self.track)
        self._pc.addTransceiver(self.sender, direction="sendonly")
        self.extra_tracks = [
            ScheduleTrack(self.schedule, loop=self.loop) for _ in range(self.audio_streams - 1)
        ]
        for extra in self.extra_tracks:
            self._pc.addTransceiver(extra, direction="sendonly")
        mids = await negotiation.publish(
            self._handle,
            self._pc,
            display=self.display,
            descriptions=self._description_texts(),
            edit_offer=ask_for_dtx if self.ask_dtx else None,
        )
        self._audio_mid, self._extra_mids = mids[0], mids[1:]
        # Like Chrome: DTX when the room's answer asks for it (no await since: no frame was sent yet).
        answer = self._pc.remoteDescription
        self.dtx = answer is not None and answers_dtx(answer.sdp)
        self.sender.use_dtx(self.dtx)

    def say(self, utterance_id: str, pause_before: float = 0.0) -> None:
        """Speak a fixture utterance now (after what is already being said)."""
        if self.track is None:
            raise RuntimeError(f"{self.name} does not publish audio")
        self.track.say(fixture_speech(utterance_id, pause_before))

    async def configure_language(self, language: str) -> None:
        """Declare a new language the way a client would: new display name and stream description."""
        assert self._handle is not None
        self.language = parse_language(language)
        await videoroom.configure(
            self._handle,
            descriptions=self._descriptions(),
            display=self.display if self.declare in ("display", "both") else None,
        )

    async def subscribe(self, feed: ParticipantId, mids: Sequence[str] | None = None) -> Listening:
        """Receive a feed (all its streams unless `mids`); its audio is recorded, its data kept."""
        assert self._session is not None
        handle = await self._session.attach(videoroom.PLUGIN)
        streams = [videoroom.stream_request(feed, mid) for mid in mids] if mids else [{"feed": feed}]
        pc = new_peer_connection(self.ice)
        listening = Listening(feed, handle, pc)
        self._listenings.append(listening)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                listening.recorders.append(Recorder(track).start())
                listening._track_arrived.set()

        def keep(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: object) -> None:
                if isinstance(message, str):
                    listening.messages.append((time.monotonic(), message))

        pc.on("datachannel", keep)
        listening.channel = await negotiation.subscribe(
            handle,
            pc,
            self.room,
            streams,
            private_id=self.private_id,
            data_channel="subscriber",
            on_channel=keep,
        )
        return listening

    async def subscribe_interpreter(self, timeout_s: float = 10.0) -> Listening:
        pub = await self.wait_for_publisher(self.is_my_interpreter, timeout_s)
        return await self.subscribe(pub.id)

    async def leave(self) -> None:
        """Leave the room the way a well-behaved client does (`leave`, then hang up)."""
        for listening in self._listenings:
            await listening.close()
        self._listenings.clear()
        if self._handle is not None and self._session is not None and not self._session.closed:
            with contextlib.suppress(Exception):
                await videoroom.leave(self._handle)
        if self._pc is not None:
            await close_quietly(self._pc)
            self._pc = None
        if self._session is not None:
            await self._session.destroy()
            self._session = None
        self._handle = None
        self.publishers.clear()
        self.id = None

    async def rejoin(self) -> ParticipantId:
        await self.leave()
        return await self.join()

    async def close(self) -> None:
        await self.leave()

    async def __aenter__(self) -> SimParticipant:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def ask_for_dtx(sdp: str) -> str:
    """An aiortc offer (no Opus fmtp) with Chrome's Opus parameters plus `usedtx=1`, the way web
    clients ask for DTX: VideoRoom answers `usedtx=1` only to an offer that has it, in a room with
    `opus_dtx` (janus_videoroom.c reads the offer's fmtp; Chrome's plain offer does not ask)."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("a=rtpmap:") and " opus/48000" in line.lower():
            payload_type = line[len("a=rtpmap:") :].split(" ", 1)[0]
            if not any(other.startswith(f"a=fmtp:{payload_type} ") for other in lines):
                out.append(f"a=fmtp:{payload_type} minptime=10;useinbandfec=1;usedtx=1")
    return "\r\n".join(out)


def answers_dtx(sdp: str) -> bool:
    """Whether an SDP answer asks the sender for Opus DTX (`usedtx=1` in an fmtp line)."""
    for line in sdp.splitlines():
        params = line.split(" ", 1)[1].split(";") if line.startswith("a=fmtp:") and " " in line else []
        if "usedtx=1" in (param.strip() for param in params):
            return True
    return False


class _SwitchTrack(MediaStreamTrack):
    """The published track: the schedule's frames as they are (aiortc encodes them), or, with DTX,
    Opus packets made here (`DtxOpusTrack`). Chosen once, before the first frame is asked for."""

    kind = "audio"

    def __init__(self, source: ScheduleTrack) -> None:
        super().__init__()
        self._source: MediaStreamTrack = source
        self.dtx: DtxOpusTrack | None = None

    def use_dtx(self, on: bool) -> None:
        if on and self.dtx is None:
            self.dtx = DtxOpusTrack(self._source)
            self._source = self.dtx

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._source.recv()

    def stop(self) -> None:
        super().stop()
        self._source.stop()


__all__ = [
    "FRAME_SAMPLES",
    "RATE",
    "Listening",
    "Recorder",
    "Recording",
    "ScheduleTrack",
    "SimParticipant",
    "Speech",
    "SpokenUtterance",
    "best_envelope_match",
    "envelope",
    "fixture_speech",
    "upsample_24k_to_48k",
]
