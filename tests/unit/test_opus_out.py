"""The feeds' Opus packets: what a listener's decoder makes of them, their timestamps as aiortc packs
them, and the cached silence packet standing in for encoding silence."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder

from tests.unit.playout_audio import key, new_track
from translator_bot.audio.opus_out import FRAME_SAMPLES, OpusFeedEncoder, OpusPacket
from translator_bot.audio.pcm import Int16Array
from translator_bot.audio.playout_upsample import ItemUpsampler
from translator_bot.fixtures import read_pcm, utterance

TIME_BASE = fractions.Fraction(1, 48_000)


def speech48k(utterance_id: str) -> Int16Array:
    """A fixture utterance at 48 kHz, whole frames, as the playout queue hands it out."""
    upsampler = ItemUpsampler()
    pcm24 = read_pcm(utterance(utterance_id)).astype(np.int16)
    pcm = np.concatenate([upsampler.upsample(pcm24), upsampler.flush()])
    return pcm[: pcm.size // FRAME_SAMPLES * FRAME_SAMPLES]


def frames_of(pcm: Int16Array) -> list[Int16Array]:
    return list(pcm.reshape(-1, FRAME_SAMPLES))


def decode(packets: list[OpusPacket]) -> tuple[Int16Array, list[int]]:
    """A listener's decoder (aiortc's and the browser's decode to 48 kHz): the left channel, and the
    samples each packet decoded to."""
    decoder = av.CodecContext.create("libopus", "r")
    out: list[Int16Array] = []
    sizes: list[int] = []
    for packet in packets:
        frames = decoder.decode(packet)
        sizes.append(sum(f.samples for f in frames))
        out += [f.to_ndarray().reshape(-1, f.layout.nb_channels)[:, 0].astype(np.int16) for f in frames]
    return np.concatenate(out), sizes


def aligned_snr_db(reference: Int16Array, decoded: Int16Array) -> float:
    """SNR of `decoded` against `reference` after removing the codec's look-ahead (found, not assumed)."""
    ref = reference.astype(np.float64)
    dec = decoded.astype(np.float64)
    span = ref.size - 2_000
    best = max(range(0, 1_000), key=lambda lag: float(np.dot(ref[:span], dec[lag : lag + span])))
    error = ref[:span] - dec[best : best + span]
    return float(10 * np.log10(np.sum(ref[:span] ** 2) / np.sum(error**2)))


def encode_all(encoder: OpusFeedEncoder, frames: list[Int16Array], first_pts: int = 0) -> list[OpusPacket]:
    return [encoder.encode(f, first_pts + n * FRAME_SAMPLES) for n, f in enumerate(frames)]


SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


# ---- the track -------------------------------------------------------------------------------------


async def test_the_track_hands_aiortc_opus_packets_with_contiguous_timestamps() -> None:
    """aiortc's sender packs a packet as it is: payload bytes(packet), RTP timestamp pts at 48 kHz;
    a frame would be encoded again in its worker thread with its audio-level loop on the event loop."""
    track, _ = new_track(cushion_ms=0)
    speech = speech48k("u1-en")
    pcm24 = read_pcm(utterance("u1-en")).astype("<i2").tobytes()
    packets = [await track.recv() for _ in range(3)]  # idle
    track.enqueue(pcm24, key("a"))
    track.end_item(key("a"))
    packets += [await track.recv() for _ in range(speech.size // FRAME_SAMPLES + 10)]
    packer = OpusEncoder()
    for n, packet in enumerate(packets):
        assert isinstance(packet, av.Packet)
        assert packet.pts == n * FRAME_SAMPLES and packet.time_base == TIME_BASE
        payloads, timestamp = packer.pack(packet)
        assert payloads == [bytes(packet)] and timestamp == n * FRAME_SAMPLES
    decoded, sizes = decode(packets)
    assert sizes == [FRAME_SAMPLES] * len(packets)  # every packet is 20 ms at 48 kHz
    assert not decoded[: 3 * FRAME_SAMPLES].any()  # idle: silence, exactly
    heard = decoded[3 * FRAME_SAMPLES :]
    assert aligned_snr_db(speech, heard) > 15
    level = 10 * np.log10(np.mean(heard.astype(float) ** 2) / np.mean(speech.astype(float) ** 2))
    assert abs(level) < 0.5, level  # no -3 dB mono/stereo loss on the way


async def test_an_idle_track_sends_the_cached_silence_packet_without_encoding() -> None:
    track, _ = new_track()
    encoded_before = track.encoder.encoded_frames
    packets = [await track.recv() for _ in range(50)]
    assert {bytes(p) for p in packets} == {track.encoder.silence_payload}
    assert len(track.encoder.silence_payload) <= 3  # CELT's silence frame
    assert track.encoder.encoded_frames == encoded_before
    assert track.encoder.silence_frames == 50


async def test_a_consumer_back_after_a_gap_gets_packets_whose_pts_move_on_by_the_gap() -> None:
    track, clock = new_track()
    before = [await track.recv() for _ in range(5)]
    clock.advance(3.0)
    after = [await track.recv() for _ in range(2)]
    assert [p.pts for p in before] == [n * FRAME_SAMPLES for n in range(5)]
    assert [p.pts for p in after] == [(5 + 149) * FRAME_SAMPLES, (5 + 150) * FRAME_SAMPLES]


# ---- the encoder -----------------------------------------------------------------------------------


def test_speech_after_silence_decodes_as_if_every_silent_frame_had_been_encoded() -> None:
    """The cached silence is sent only once the encoder has settled on it, so a decoder that was fed
    it is where the encoder expects it to be: speech after 3 or 100 silent frames decodes as well as
    when every frame goes through the encoder, onset included."""
    first, second = frames_of(speech48k("u1-en")), frames_of(speech48k("u2-es"))
    for gap in (1, 3, 100):
        frames = [SILENCE] * 5 + first + [SILENCE] * gap + second + [SILENCE] * 5
        cached = OpusFeedEncoder()
        every = OpusFeedEncoder(cache_silence=False)
        with_cache, _ = decode(encode_all(cached, frames))
        without, _ = decode(encode_all(every, frames))
        # Speech and its tail (a few frames, until the encoder settles) are encoded, the rest cached.
        assert cached.encoded_frames <= len(first) + len(second) + 2 * 4, cached.encoded_frames
        assert cached.silence_frames + cached.encoded_frames == len(frames)
        assert every.silence_frames == 0
        reference = np.concatenate(frames)
        snr_cached, snr_every = aligned_snr_db(reference, with_cache), aligned_snr_db(reference, without)
        assert snr_cached > 15 and snr_cached > snr_every - 0.5, (gap, snr_cached, snr_every)
        onset = (5 + len(first) + gap) * FRAME_SAMPLES
        window = slice(onset, onset + 5 * FRAME_SAMPLES)
        onset_cached = aligned_snr_db(reference[window], with_cache[window.start : window.stop + 1_000])
        onset_every = aligned_snr_db(reference[window], without[window.start : window.stop + 1_000])
        assert onset_cached > onset_every - 1.0, (gap, onset_cached, onset_every)


def test_the_speech_tail_is_encoded_before_the_cache_takes_over() -> None:
    """The codec's look-ahead still holds the last milliseconds of speech when the input turns
    silent: those frames are encoded, so the end of the speech is heard, not cut."""
    speech = frames_of(speech48k("u1-en"))
    encoder = OpusFeedEncoder()
    packets = encode_all(encoder, speech + [SILENCE] * 10)
    tail = [bytes(p) for p in packets[len(speech) :]]
    assert tail[0] != encoder.silence_payload  # the tail of the look-ahead
    assert tail[-1] == encoder.silence_payload  # then the cache
    decoded, _ = decode(packets)
    whole = np.concatenate(speech).astype(float)
    assert np.sum(decoded.astype(float) ** 2) == pytest.approx(np.sum(whole**2), rel=0.1)


def test_silence_packets_are_fresh_objects_with_their_own_pts() -> None:
    encoder = OpusFeedEncoder()
    packets = encode_all(encoder, [SILENCE] * 3, first_pts=960_000)
    assert [p.pts for p in packets] == [960_000, 960_960, 961_920]
    assert len({id(p) for p in packets}) == 3


def test_a_frame_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="960 samples"):
        OpusFeedEncoder().encode(np.ones(480, dtype=np.int16), 0)
