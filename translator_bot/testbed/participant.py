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
import fractions
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt
import soxr
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from translator_bot.languages import Language, parse_language
from translator_bot.room import videoroom
from translator_bot.room.janus import JanusHandle, JanusSession, JsonObject
from translator_bot.room.metadata import (
    ParticipantId,
    feed_is_for,
    parse_description,
    participant_description,
    participant_display,
)
from translator_bot.room.peers import IceConfig, close_quietly, from_jsep, new_peer_connection, to_jsep

log = logging.getLogger(__name__)

RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
FRAME_SECONDS = FRAME_SAMPLES / RATE
Declare = Literal["display", "description", "both"]
Pcm = npt.NDArray[np.int16]


def upsample_24k_to_48k(pcm: Pcm) -> Pcm:
    """Offline (whole-utterance) 2x upsampling of 24 kHz int16 speech."""
    return np.asarray(soxr.resample(pcm, 24_000, RATE, quality="VHQ"), dtype=np.int16)


@dataclass(frozen=True)
class Speech:
    """One entry of a schedule: wait `pause_before` seconds of silence, then speak `pcm24k`."""

    label: str
    pcm24k: Pcm
    pause_before: float = 0.0


@dataclass
class SpokenUtterance:
    label: str
    start: float  # monotonic time the first frame of it was due
    end: float | None = None  # monotonic time its last frame ended


class ScheduleTrack(MediaStreamTrack):
    """48 kHz mono s16 audio that plays a schedule, paced by a monotonic clock, silence otherwise."""

    kind = "audio"

    def __init__(self, schedule: Sequence[Speech] = (), *, loop: bool = False) -> None:
        super().__init__()
        self._schedule = list(schedule)
        self._repeat = loop
        self._segments: list[tuple[str, Pcm]] = []  # (label, samples at 48 kHz); label "" is silence
        self._queue_schedule()
        self._buffer: Pcm = np.zeros(0, dtype=np.int16)
        self._label = ""
        self._pos = 0
        self._start: float | None = None
        self._frames = 0
        self.spoken: list[SpokenUtterance] = []

    def say(self, speech: Speech) -> None:
        """Speak `speech` once whatever is playing now has finished (after its `pause_before`)."""
        if speech.pause_before > 0:
            self._segments.append(("", np.zeros(int(speech.pause_before * RATE), dtype=np.int16)))
        self._segments.append((speech.label, upsample_24k_to_48k(speech.pcm24k)))

    @property
    def busy(self) -> bool:
        """Still speaking, or with something queued to say."""
        return bool(self._segments) or bool(self._label and self._pos < len(self._buffer))

    def _queue_schedule(self) -> None:
        for speech in self._schedule:
            self.say(speech)

    def _next_samples(self, due: float) -> Pcm:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES:
            if self._pos >= len(self._buffer):
                if self._label and self.spoken and self.spoken[-1].end is None:
                    self.spoken[-1].end = due + filled / RATE
                if not self._segments and self._repeat and self._schedule:
                    self._queue_schedule()
                if not self._segments:
                    self._label, self._buffer, self._pos = "", np.zeros(0, dtype=np.int16), 0
                    break
                self._label, self._buffer = self._segments.pop(0)
                self._pos = 0
                if self._label:
                    self.spoken.append(SpokenUtterance(self._label, due + filled / RATE))
            take = min(FRAME_SAMPLES - filled, len(self._buffer) - self._pos)
            out[filled : filled + take] = self._buffer[self._pos : self._pos + take]
            filled += take
            self._pos += take
        return out

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._frames * FRAME_SECONDS
        if due > now:
            await asyncio.sleep(due - now)
        samples = self._next_samples(due)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._frames * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self._frames += 1
        return frame


@dataclass
class Recording:
    """What one subscribed track delivered: mono 48 kHz samples and when each frame arrived."""

    chunks: list[Pcm] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # monotonic, one per frame
    rates: set[int] = field(default_factory=set)
    layouts: set[str] = field(default_factory=set)
    frame_samples: set[int] = field(default_factory=set)
    ended: bool = False

    @property
    def frames(self) -> int:
        return len(self.chunks)

    def samples(self) -> Pcm:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)

    def add(self, frame: av.AudioFrame) -> None:
        data = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if frame.format.is_planar:
            mono = data.astype(np.float32).mean(axis=0)
        else:
            mono = data.reshape(-1, channels).astype(np.float32).mean(axis=1)
        self.chunks.append(np.clip(np.rint(mono), -32768, 32767).astype(np.int16))
        self.arrivals.append(time.monotonic())
        self.rates.add(int(frame.sample_rate))
        self.layouts.add(frame.layout.name)
        self.frame_samples.add(int(frame.samples))

    def first_loud_arrival(self, threshold: float = 500.0) -> float | None:
        """Arrival time of the first frame whose RMS exceeds `threshold` (int16 units)."""
        for chunk, at in zip(self.chunks, self.arrivals, strict=True):
            if chunk.size and float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) > threshold:
                return at
        return None


class Recorder:
    """Reads a remote track until it ends or `stop()`; owns its reading task."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.recording = Recording()
        self._first = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                if isinstance(frame, av.AudioFrame):
                    self.recording.add(frame)
                self._first.set()
        except MediaStreamError:
            self.recording.ended = True

    async def wait_first_frame(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._first.wait()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


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
        self.extra_tracks: list[ScheduleTrack] = []
        self.id: ParticipantId | None = None
        self.private_id: int | None = None
        self.track: ScheduleTrack | None = None
        self.tracks_spoken: list[ScheduleTrack] = []
        self.publishers: dict[ParticipantId, videoroom.PublisherInfo] = {}
        self.events: list[tuple[float, videoroom.VideoRoomEvent]] = []
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

    def _descriptions(self) -> list[tuple[str, str]]:
        if self.description is not None and self._audio_mid is not None:
            return [(self._audio_mid, self.description)]
        if self.declare in ("description", "both") and self._audio_mid is not None:
            described = participant_description(self.name, self.language)
            return [(mid, described) for mid in [self._audio_mid, *self._extra_mids]]
        return []

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
            elif isinstance(event, (videoroom.FeedUnpublished, videoroom.ParticipantLeaving)):
                self.publishers.pop(event.id, None)
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
        joined = await videoroom.join_publisher(self._handle, self.room, self.display)
        self.joined_at = time.monotonic()
        self.id, self.private_id = joined.id, joined.private_id
        for pub in joined.publishers:
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
        self._pc.addTransceiver(self.track, direction="sendonly")
        self.extra_tracks = [
            ScheduleTrack(self.schedule, loop=self.loop) for _ in range(self.audio_streams - 1)
        ]
        for extra in self.extra_tracks:
            self._pc.addTransceiver(extra, direction="sendonly")
        await self._pc.setLocalDescription(await self._pc.createOffer())
        self._audio_mid = self._pc.getTransceivers()[0].mid or "0"
        self._extra_mids = [t.mid or str(i + 1) for i, t in enumerate(self._pc.getTransceivers()[1:])]
        reply = await videoroom.publish(
            self._handle,
            to_jsep(self._pc.localDescription),
            descriptions=self._descriptions(),
            display=self.display,
        )
        if reply.jsep is None:
            raise RuntimeError("Janus accepted the publish without an answer")
        await self._pc.setRemoteDescription(from_jsep(reply.jsep))

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
                listening.recorders.append(Recorder(track))
                listening._track_arrived.set()

        def keep(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: object) -> None:
                if isinstance(message, str):
                    listening.messages.append((time.monotonic(), message))

        pc.on("datachannel", keep)
        reply = await videoroom.join_subscriber(handle, self.room, streams, private_id=self.private_id)
        assert reply.jsep is not None
        await pc.setRemoteDescription(from_jsep(reply.jsep))
        if "m=application" in str(reply.jsep.get("sdp", "")):
            # VideoRoom relays data only to a subscriber that opened a channel of its own.
            listening.channel = pc.createDataChannel("subscriber")
            keep(listening.channel)
        await pc.setLocalDescription(await pc.createAnswer())
        await videoroom.start(handle, to_jsep(pc.localDescription))
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


def fixture_speech(utterance_id: str, pause_before: float = 0.0) -> Speech:
    from translator_bot.fixtures import read_pcm, utterance

    return Speech(utterance_id, read_pcm(utterance(utterance_id)), pause_before)


def envelope(samples: Pcm, rate: int = RATE, window_s: float = 0.02) -> npt.NDArray[np.float64]:
    """RMS per window: a shape of speech that survives Opus, for matching what was heard to a fixture."""
    n = int(rate * window_s)
    usable = len(samples) // n * n
    if usable == 0:
        return np.zeros(0)
    blocks = samples[:usable].astype(np.float64).reshape(-1, n)
    return np.asarray(np.sqrt(np.mean(blocks**2, axis=1)))


def best_envelope_match(heard: Pcm, reference24k: Pcm) -> float:
    """Highest normalised correlation of the reference's envelope against any stretch of what was heard."""
    ref = envelope(upsample_24k_to_48k(reference24k))
    got = envelope(heard)
    if len(ref) == 0 or len(got) < len(ref):
        return 0.0
    ref = (ref - ref.mean()) / (ref.std() + 1e-9)
    windows = np.lib.stride_tricks.sliding_window_view(got, len(ref))
    means = windows.mean(axis=1, keepdims=True)
    stds = windows.std(axis=1, keepdims=True) + 1e-9
    scores = ((windows - means) / stds) @ ref / len(ref)
    return float(scores.max())


__all__ = [
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
