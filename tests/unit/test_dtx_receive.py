"""A DTX sender through aiortc's real receive path (two peer connections on this host) into AudioIn.

What aiortc delivers across a DTX pause (measured here, aiortc 1.16): decoded frames keep the RTP
timestamps as pts, so the pause is a pts jump; a keep-alive (the TOC byte alone) decodes to 20 ms
(silence after silence); but its audio jitter buffer releases a frame only once four newer ones are
in, so during the pause one stale frame comes per keep-alive (~400 ms) and the pause's own gaps reach
the reader ~1.6 s late, the last of them only when the talk resumes. A lost packet stalls the buffer
for ~16 packets (~0.3 s) and also drops the four frames it held: a pts gap, filled with its length
of silence (nothing else: no concealment), after which the frames come ~160 ms later than before.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from translator_bot import metrics
from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.playout import PlayoutTrack
from translator_bot.interpreter.audio_in import AudioIn
from translator_bot.testbed.dtx import (
    FRAME_SAMPLES,
    HANGOVER_FRAMES,
    KEEPALIVE_FRAMES,
    OPUS_RATE,
    DtxOpusTrack,
    Send,
    dtx_decision,
    keepalive_payload,
)

FRAME_S = 0.02


class PlanTrack(MediaStreamTrack):
    """20 ms 48 kHz mono frames, paced: a tone where `loud(n)`, digital silence elsewhere; after
    `frames` frames it goes quiet for good (`mute`: sends nothing more, like a muted microphone)."""

    kind = "audio"

    def __init__(self, loud: Callable[[int], bool], frames: int, *, mute: bool = False) -> None:
        super().__init__()
        self._loud = loud
        self._frames = frames
        self._mute = mute
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._n >= self._frames and self._mute:
            await asyncio.Event().wait()  # never: the sender just stops
        now = time.monotonic()
        self._t0 = self._t0 or now
        due = self._t0 + self._n * FRAME_S
        if due > now:
            await asyncio.sleep(due - now)
        t = np.arange(FRAME_SAMPLES) + self._n * FRAME_SAMPLES
        tone = (np.sin(2 * np.pi * 440 * t / OPUS_RATE) * 8000).astype(np.int16)
        samples = tone if self._n < self._frames and self._loud(self._n) else np.zeros_like(tone)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = OPUS_RATE, self._n * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, OPUS_RATE)
        self._n += 1
        return frame


@dataclass
class Heard:
    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    def add(self, pid: str, pcm: bytes) -> None:
        self.chunks.append((time.monotonic(), pcm))

    def samples(self) -> np.ndarray:
        return np.frombuffer(b"".join(c for _, c in self.chunks), dtype=np.int16)

    def when_length(self, samples: int) -> float | None:
        """Wall time the lanes' stream first reached `samples` samples."""
        total = 0
        for at, chunk in self.chunks:
            total += len(chunk) // 2
            if total >= samples:
                return at
        return None

    def when_sample(self, index: int) -> float | None:
        return self.when_length(index + 1)


def loud_runs(samples: np.ndarray, level: int = 1000) -> list[tuple[int, int]]:
    """(start, end) sample indexes of the loud stretches (20 ms resolution at 24 kHz)."""
    block = MODEL_RATE // 50
    loud = [
        np.abs(samples[i : i + block].astype(np.int32)).max(initial=0) > level
        for i in range(0, len(samples), block)
    ]
    runs: list[tuple[int, int]] = []
    for i, on in enumerate(loud):
        if on and (not runs or runs[-1][1] != i * block):
            runs.append((i * block, (i + 1) * block))
        elif on:
            runs[-1] = (runs[-1][0], (i + 1) * block)
    return runs


@contextlib.asynccontextmanager
async def linked(
    track: MediaStreamTrack, tap: Callable[[RTCPeerConnection], None] = lambda receiver: None
) -> AsyncIterator[MediaStreamTrack]:
    """`track` sent from one peer connection to another on this host: yields the receiving side's
    track, and closes both connections on the way out. `tap` sees the receiver once it knows the
    offer, before it answers (its RTP receiver exists then)."""
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    receiver.on("track", got.set_result)
    try:
        sender.addTrack(track)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        tap(receiver)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        yield await asyncio.wait_for(got, 10)
    finally:
        await receiver.close()
        await sender.close()


async def receive(
    track: MediaStreamTrack,
    seconds: float,
    *,
    max_idle_fill_s: float = 3.0,
    drop: Callable[[int], bool] = lambda seq: False,
) -> tuple[Heard, AudioIn, dict[str, Any]]:
    """Send `track` from one peer connection to another; AudioIn reads what arrives for `seconds`."""
    heard = Heard()
    audio = AudioIn(heard.add, name_of=str, max_idle_fill_s=max_idle_fill_s)
    packets = {"received": 0, "dropped": 0}

    def make_lossy(receiver: RTCPeerConnection) -> None:
        rtp = receiver.getReceivers()[0]
        handle: Callable[..., Awaitable[None]] = rtp._handle_rtp_packet
        first: list[int] = []

        async def lossy(packet: Any, **kwargs: Any) -> None:  # a lossy network, for the test only
            first[:] = first or [packet.sequence_number]
            if drop((packet.sequence_number - first[0]) % 65536):
                packets["dropped"] += 1
                return
            packets["received"] += 1
            await handle(packet, **kwargs)

        rtp._handle_rtp_packet = lossy  # type: ignore[method-assign,assignment]

    async with linked(track, make_lossy) as remote:
        try:
            audio.start("a", "a/0", remote)
            await asyncio.sleep(seconds)
        finally:
            await audio.aclose()
    return heard, audio, packets


def in_speech(start_s: float, end_s: float) -> Callable[[int], bool]:
    return lambda n: start_s <= n * FRAME_S < end_s


async def test_a_dtx_pause_reaches_the_lanes_as_silence_on_time_and_on_the_clock() -> None:
    # 1 s of tone, a 2 s pause (DTX), 0.6 s of tone, then silence again
    loud = lambda n: in_speech(0.0, 1.0)(n) or in_speech(3.0, 3.6)(n)  # noqa: E731
    dtx = DtxOpusTrack(PlanTrack(loud, frames=1000))
    heard, _, packets = await receive(dtx, 5.5)
    assert dtx.sent[Send.NOTHING] > 100 and dtx.sent[Send.KEEPALIVE] >= 8  # it really was DTX
    samples = heard.samples()
    runs = loud_runs(samples)
    assert len(runs) == 2, runs
    (on1, off1), (on2, _off2) = runs
    # On the sender's clock: the pause is as long as it was, the second tone where it belongs.
    assert abs((on2 - on1) / MODEL_RATE - 3.0) < 0.045
    assert abs((off1 - on1) / MODEL_RATE - 1.0) < 0.045
    assert not np.abs(samples[off1 + 480 : on2 - 480].astype(np.int32)).max(initial=0) > 1000
    # On time: half a second of the pause (a turn detector's wait) was heard within ~a second of the
    # tone's end (the margin before silence is presumed is 0.3 s); aiortc alone delivers it ~2 s later,
    # when the tone resumes.
    tone_end_heard = heard.when_sample(off1 - 1)
    half_pause_heard = heard.when_length(off1 + MODEL_RATE // 2)
    assert tone_end_heard is not None and half_pause_heard is not None
    assert half_pause_heard - tone_end_heard < 1.2, half_pause_heard - tone_end_heard
    # The trailing silence keeps coming while the sender stays in DTX (not just until the cap).
    assert len(samples) / MODEL_RATE > 5.5 - 1.0
    # And the receiver got a fraction of the packets: ~50 per second of talk, ~2.5 per second of pause.
    assert packets["received"] < 0.5 * (5.5 / FRAME_S)


async def test_a_sender_that_stops_sending_gets_the_capped_silence_then_nothing() -> None:
    track = PlanTrack(lambda n: True, frames=25, mute=True)  # 0.5 s of tone, then no packet at all
    heard, _, _ = await receive(track, 2.5, max_idle_fill_s=1.0)
    samples = heard.samples()
    ((_on, off),) = loud_runs(samples)
    after = len(samples) - off
    assert abs(after / MODEL_RATE - 1.0) < 0.03, after / MODEL_RATE  # the cap, then nothing more
    assert not np.abs(samples[off + 480 :].astype(np.int32)).max(initial=0) > 1000


async def test_lost_packets_are_a_gap_of_their_length_and_no_presumed_silence() -> None:
    # A continuous tone, three packets lost on the way in its middle.
    before = metrics.AUDIO_INPUT_PRESUMED_SILENCE._value.get()
    track = PlanTrack(lambda n: True, frames=10_000)
    heard, audio, packets = await receive(track, 2.5, drop=lambda seq: seq in (40, 41, 42))
    assert packets["dropped"] == 3
    presumed = metrics.AUDIO_INPUT_PRESUMED_SILENCE._value.get() - before
    samples = heard.samples()
    runs = loud_runs(samples)
    assert len(runs) == 2, runs  # one hole
    (_on1, off1), (on2, _) = runs
    hole_s = (on2 - off1) / MODEL_RATE
    # aiortc drops the lost packets and the four frames it held when it gives up waiting for them.
    assert 0.05 < hole_s < 0.2, hole_s
    # Whatever silence was presumed during the stall was part of that hole, not added to it.
    assert presumed < hole_s + 0.001
    assert audio.frames_heard == {}  # closed


def test_the_sender_here_is_dtx_like_chrome() -> None:
    choices = [dtx_decision(n) for n in range(0, HANGOVER_FRAMES + 2 * KEEPALIVE_FRAMES + 2)]
    assert choices[: HANGOVER_FRAMES + 1] == [Send.PACKET] * (HANGOVER_FRAMES + 1)
    keepalives = [n for n, c in enumerate(choices) if c is Send.KEEPALIVE]
    first = HANGOVER_FRAMES + 1
    assert keepalives == [first, first + KEEPALIVE_FRAMES, first + 2 * KEEPALIVE_FRAMES]
    assert keepalive_payload(bytes([0x7B, 1, 2])) == bytes([0x78])  # code 0, no frame data


pytestmark = pytest.mark.timeout(60)


def test_a_participant_asks_for_dtx_in_its_offer_and_reads_the_answer() -> None:
    from translator_bot.testbed.participant import answers_dtx, ask_for_dtx

    offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    asked = ask_for_dtx(offer)
    assert "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=10;useinbandfec=1;usedtx=1\r\n" in asked
    assert ask_for_dtx(asked) == asked  # an fmtp already there is left alone
    assert answers_dtx("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1;usedtx=1\r\n")
    assert answers_dtx("a=fmtp:111 usedtx=1")
    assert not answers_dtx("a=fmtp:96 useinbandfec=1\r\n")
    assert not answers_dtx("a=fmtp:96 usedtx=0;useinbandfec=1\r\n")


async def _first_frame_after_the_feed_went_quiet(*, welcome: bool) -> float:
    """Seconds from an aiortc listener's track to its first decoded frame, for a bot feed (PlayoutTrack,
    DTX) that was already past its hangover when the listener connected, as a feed is for anyone who
    subscribes after its first 200 ms."""
    track = PlayoutTrack()
    for _ in range(11):  # the hangover and the first DTX frame: quiet now
        await track.recv()
    assert track.encoder.dtx_frames == 1
    if welcome:
        track.welcome()  # what the feed set does when it publishes a feed or relabels it
    try:
        async with linked(track) as remote:
            start = time.monotonic()
            await asyncio.wait_for(remote.recv(), 10)
            return time.monotonic() - start
    finally:
        track.stop()


async def test_a_listener_connecting_to_a_quiet_feed_hears_it_at_once() -> None:
    # Without the welcome the listener's jitter buffer waits for five keep-alives, one per 400 ms.
    unwelcomed = await _first_frame_after_the_feed_went_quiet(welcome=False)
    welcomed = await _first_frame_after_the_feed_went_quiet(welcome=True)
    assert unwelcomed > 1.2, f"the quiet feed's first frame came after {unwelcomed:.2f} s"
    assert welcomed < 0.6, f"first frame {welcomed:.2f} s after the listener connected"
