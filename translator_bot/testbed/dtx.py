"""Opus DTX the way a browser sends it, for simulated participants in rooms that negotiate it.

A room with `opus_dtx` answers a publisher's offer with `usedtx=1` in the Opus fmtp; Chrome then
stops sending a packet per 20 ms while its voice activity detection hears no speech: after a short
hang-over of ordinary packets it sends a 1-byte packet (the Opus TOC byte alone, which a decoder
plays as a lost frame: concealment fading to silence) about every 400 ms, and nothing in between.
The RTP timestamps jump over the frames not sent; the sequence numbers stay contiguous (no packet
was lost). aiortc's encoder has no DTX and this ffmpeg's libopus wrapper ignores a `dtx` option (a
DTX-enabled libopus answers digital silence with 1-byte packets; this one keeps sending 25-35 bytes),
so the track here encodes the frames it sends itself with PyAV's libopus and decides what to send.

aiortc's sender packs an `av.Packet` it is handed without re-encoding: the payload is the packet's
bytes, the RTP timestamp its pts (1/48000 s), the sequence number the next one.
"""

from __future__ import annotations

import fractions
from enum import Enum
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from translator_bot.audio.opus_out import open_opus_encoder

OPUS_RATE = 48_000
TIME_BASE = fractions.Fraction(1, OPUS_RATE)
FRAME_SAMPLES = OPUS_RATE // 50
# Ordinary packets still sent after speech ends, like libopus's DTX hang-over (10 frames).
HANGOVER_FRAMES = 10
# One keep-alive per this many silent frames once in DTX: ~400 ms, what Chrome sends.
KEEPALIVE_FRAMES = 20
# A frame whose samples all stay below this (about -54 dBFS) is silence to the voice detection.
SILENCE_PEAK = 64
BITRATE = 32_000


class Send(Enum):
    PACKET = "packet"  # the encoded frame
    KEEPALIVE = "keepalive"  # its TOC byte alone
    NOTHING = "nothing"


def dtx_decision(silent_frames: int) -> Send:
    """What to send for a frame that ends a run of `silent_frames` silent frames (0: not silent)."""
    if silent_frames <= HANGOVER_FRAMES:
        return Send.PACKET
    if (silent_frames - HANGOVER_FRAMES - 1) % KEEPALIVE_FRAMES == 0:
        return Send.KEEPALIVE
    return Send.NOTHING


def is_silent(mono: npt.NDArray[np.int16]) -> bool:
    return int(np.abs(mono.astype(np.int32)).max(initial=0)) < SILENCE_PEAK


def keepalive_payload(packet: bytes) -> bytes:
    """The TOC byte of `packet` with frame-count code 0 and no frame data: a DTX packet."""
    return bytes([packet[0] & 0xFC])


class DtxOpusTrack(MediaStreamTrack):
    """Opus packets of `source`'s 20 ms 48 kHz mono s16 frames, with DTX; paced by `source`.

    Only the frames whose packets are sent are encoded (a keep-alive reuses the last packet's TOC):
    the encoder runs on the event loop of a process that also runs the fake model server and the
    other participants (~430 us per frame at complexity 10, ~4 % of a core per participant), and a
    decoder never sees the frames skipped, so their encoding would change nothing it hears."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source
        self._codec = open_opus_encoder(
            BITRATE, {"application": "voip", "frame_duration": "20", "compression_level": "5"}
        )
        self._silent_frames = 0
        self._toc = 0x48  # SILK wideband 20 ms (config 9), mono, code 0: until a packet is encoded
        self._pts = 0
        self.sent = {choice: 0 for choice in Send}

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self._source.recv()
            assert isinstance(frame, av.AudioFrame)
            mono = np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)
            if mono.shape != (FRAME_SAMPLES,):
                raise ValueError(f"expected {FRAME_SAMPLES} mono samples per frame, got {mono.shape}")
            self._silent_frames = self._silent_frames + 1 if is_silent(mono) else 0
            pts = self._pts
            self._pts += FRAME_SAMPLES
            choice = dtx_decision(self._silent_frames)
            self.sent[choice] += 1
            if choice is Send.NOTHING:
                continue  # not encoded either: its packet would never be sent (see the class doc)
            if choice is Send.PACKET:
                payload = self._encode(mono, pts)
                self._toc = payload[0]
            else:
                payload = keepalive_payload(bytes([self._toc]))
            packet = av.Packet(payload)
            packet.pts = pts
            packet.time_base = TIME_BASE
            return packet

    def _encode(self, mono: npt.NDArray[np.int16], pts: int) -> bytes:
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE
        frame.pts = pts
        frame.time_base = TIME_BASE
        packets = self._codec.encode(frame)
        if len(packets) != 1:
            raise RuntimeError(f"the Opus encoder returned {len(packets)} packets for one frame")
        return bytes(packets[0])

    def stop(self) -> None:
        super().stop()
        self._source.stop()
