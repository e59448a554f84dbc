"""Room audio -> Opus packets: our own encoder for speech, one cached packet for silence.

aiortc's sender, handed an `av.AudioFrame`, computes the RTP audio level in a pure-Python loop on the
event loop and encodes in a worker thread (two thread hand-offs per frame); handed an `av.Packet`, it
only packs it: the payload is `bytes(packet)` and the RTP timestamp is `packet.pts` in 1/48000 units
(Opus's RTP clock is 48 kHz whatever the audio's rate). So the playout track hands it packets made here.

Settings, chosen for what the feeds carry (a model's speech, 24 kHz mono upsampled to 48 kHz) and
measured on this 2-core machine over the fixture speech (tests/bench/bench_audio.py prints the costs):
- mono: the source is mono; a stereo stream of two equal channels only costs more. The RTP format is
  `opus/48000/2` either way and every Opus decoder plays mono packets, on a stereo output too (both
  channels get the signal at full level).
- application `lowdelay` (CELT only): ~70-90 us per speech frame against ~180-240 us for `voip`
  (SILK/hybrid) at the same rate, and 2.5 ms of codec look-ahead instead of 6.5 ms. The price is
  SILK's in-band FEC, which aiortc never drives anyway (no loss feedback reaches its encoder).
- 48 kbit/s nominal, VBR (speech frames take ~200 bytes, silence 3): CELT needs more bits than
  SILK for speech; still half of the 96 kbit/s stereo aiortc's encoder sends.
- cutoff 12 kHz (super-wideband): the model's 24 kHz audio has nothing above it, so no bits go there.
- complexity 5: ~30 % cheaper than 10 for ~0.7 dB less waveform SNR on the fixture speech.
- 20 ms frames: what the track paces and what WebRTC receivers expect.

Silence: while the track's input stays digital silence, the encoder is not run at all; the packet it
produces for a silent frame once it has settled (CELT's 3-byte silence frame) is sent instead. The
switch is made only once the encoder itself has emitted that very packet for a silent input, i.e. the
last speech has left its look-ahead and its state is the one a decoder of these silence packets has;
the first speech frame after any length of silence then decodes as it would after encoding every
silent frame (tests/unit/test_opus_out.py compares the two). The encoder is primed with silence when
it is made, so a feed's first packets are cached silence too.

DTX (audio/dtx.py decides when): a DTX frame is this encoder's TOC byte alone, a one-byte packet, as
libopus itself emits in DTX. A decoder given it conceals one frame, which after the silence frame is
digital silence again (libopus as aiortc's receiver runs it: tests/unit/test_opus_out.py); WebRTC's NetEq
takes any Opus payload of at most 2 bytes for DTX and plays comfort noise until the next packet. The
encoder is not run for the slots that are not sent (it is settled, so running it on their silence would
change nothing a decoder sees: the onset tests compare the two).

What is given up: aiortc adds the RTP audio-level header extension only to frames it encodes, so the
feeds carry none; Janus's "talking" events for them (`audiolevel_event`, off by default) stay silent.

Not thread-safe; each feed has its own encoder (Opus encoders carry state from frame to frame).
"""

from __future__ import annotations

import fractions
from typing import Any, TypeAlias

import av
import numpy as np

from translator_bot.audio.pcm import Int16Array

__all__ = ["OPUS_RATE", "OPUS_TIME_BASE", "OpusFeedEncoder", "OpusPacket"]

OPUS_RATE = 48_000
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_RATE)
# Encoder output belongs to no container stream.
OpusPacket: TypeAlias = "av.Packet[Any]"
FRAME_SAMPLES = OPUS_RATE // 50  # 20 ms

BITRATE = 48_000
_OPTIONS = {
    "application": "lowdelay",
    "frame_duration": "20",
    "compression_level": "5",
    "cutoff": "12000",
}
# A settled encoder repeats its silence packet from the second silent frame on (CELT's silence flag);
# more than this many frames without a repeat means the settings no longer behave as measured.
_MAX_PRIMING_FRAMES = 10


def open_opus_encoder(bitrate: int, options: dict[str, str]) -> av.AudioCodecContext:
    """An open libopus encoder for 48 kHz mono s16 frames, with these libopus `options`."""
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = OPUS_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = bitrate
    codec.time_base = OPUS_TIME_BASE
    codec.options = dict(options)
    codec.open()
    return codec


class OpusFeedEncoder:
    """20 ms frames of 48 kHz mono s16 in, one Opus packet out per frame, silence from a cache."""

    def __init__(self, bitrate: int = BITRATE, *, cache_silence: bool = True) -> None:
        """`cache_silence=False` encodes every frame (a reference for tests and benchmarks)."""
        self._codec = open_opus_encoder(bitrate, _OPTIONS)
        self._silence = self._prime()
        # True while the encoder's last output was the cached silence packet: its state is then
        # that of any decoder fed the cached packet, and silent frames need not be encoded.
        self._cache_silence = cache_silence
        self._settled = cache_silence
        self.encoded_frames = 0  # frames that went through the encoder (speech and its tail)
        self.silence_frames = 0  # frames answered with the cached silence packet
        self.dtx_frames = 0  # DTX frames (the TOC byte alone) handed out
        toc = self._silence[0]
        if toc & 0b11:
            raise RuntimeError(f"the Opus silence packet is not a single frame (TOC {toc:#04x})")
        self._dtx = bytes([toc])

    @property
    def silence_payload(self) -> bytes:
        return self._silence

    @property
    def dtx_payload(self) -> bytes:
        return self._dtx

    def settled(self) -> bool:
        """A silent frame now would be answered with the cached silence packet, encoder untouched."""
        return self._settled

    def dtx(self, pts: int) -> OpusPacket:
        """A DTX frame at `pts`: the TOC byte of this encoder's frames with no frame data."""
        packet = av.Packet(self._dtx)
        packet.pts = pts
        packet.time_base = OPUS_TIME_BASE
        self.dtx_frames += 1
        return packet

    def encode(self, mono: Int16Array, pts: int) -> OpusPacket:
        """The packet for one frame (FRAME_SAMPLES samples) at `pts` (in 1/48000 s)."""
        silent = not mono.any()
        if silent and self._settled:
            packet = av.Packet(self._silence)
            self.silence_frames += 1
        else:
            packet = self._encode_one(mono, pts)
            self.encoded_frames += 1
            self._settled = (
                self._cache_silence
                and silent
                and packet.size == len(self._silence)
                and bytes(packet) == self._silence
            )
        packet.pts = pts
        packet.time_base = OPUS_TIME_BASE
        return packet

    def _encode_one(self, mono: Int16Array, pts: int) -> OpusPacket:
        if mono.shape != (FRAME_SAMPLES,):
            raise ValueError(f"an Opus frame is {FRAME_SAMPLES} samples, got {mono.shape}")
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE
        frame.pts = pts
        frame.time_base = OPUS_TIME_BASE
        packets = self._codec.encode(frame)
        # libopus encodes each full frame at once (its look-ahead is inside the codec, not a queue).
        if len(packets) != 1:
            raise RuntimeError(f"the Opus encoder returned {len(packets)} packets for one frame")
        return packets[0]

    def _prime(self) -> bytes:
        """Encode silence until the encoder repeats itself; that packet is the cached silence."""
        zeros = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        previous = b""
        for n in range(_MAX_PRIMING_FRAMES):
            payload = bytes(self._encode_one(zeros, n * FRAME_SAMPLES))
            if payload == previous:
                return payload
            previous = payload
        raise RuntimeError("the Opus encoder never settled on a silence packet")
