"""The feeds' Opus packets: what a listener's decoder makes of them, their timestamps as aiortc packs
them, and the cached silence packet standing in for encoding silence."""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError

from tests.unit.playout_audio import key, new_track
from translator_bot.audio.clock import FakeClock
from translator_bot.audio.opus_out import FRAME_SAMPLES, OpusFeedEncoder, OpusPacket
from translator_bot.audio.pcm import Int16Array
from translator_bot.audio.playout import PlayoutTrack
from translator_bot.audio.playout_upsample import ItemUpsampler
from translator_bot.fixtures import read_pcm, utterance

TIME_BASE = fractions.Fraction(1, 48_000)


def upsample(pcm24: Int16Array) -> Int16Array:
    upsampler = ItemUpsampler()
    return np.concatenate([upsampler.upsample(pcm24.astype(np.int16)), upsampler.flush()])


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
    """Without DTX (the continuous setting): a packet in every slot, the cached one."""
    track, _ = new_track(dtx=False)
    encoded_before = track.encoder.encoded_frames
    packets = [await track.recv() for _ in range(50)]
    assert {bytes(p) for p in packets} == {track.encoder.silence_payload}
    assert len(track.encoder.silence_payload) <= 3  # CELT's silence frame
    assert track.encoder.encoded_frames == encoded_before
    assert track.encoder.silence_frames == 50


async def test_a_consumer_back_after_a_gap_gets_packets_whose_pts_move_on_by_the_gap() -> None:
    track, clock = new_track(dtx=False)  # with DTX the slots after the first are held back too
    before = [await track.recv() for _ in range(5)]
    clock.advance(3.0)
    after = [await track.recv() for _ in range(2)]
    assert [p.pts for p in before] == [n * FRAME_SAMPLES for n in range(5)]
    assert [p.pts for p in after] == [(5 + 149) * FRAME_SAMPLES, (5 + 150) * FRAME_SAMPLES]


# ---- DTX: idle -> speech -> idle ---------------------------------------------------------------------


async def test_an_idle_track_sends_a_dtx_frame_every_400_ms_after_a_200_ms_hangover() -> None:
    track, clock = new_track()
    start = clock.now()
    encoded_before = track.encoder.encoded_frames
    packets = [await track.recv() for _ in range(13)]
    assert [bytes(p) for p in packets] == [track.encoder.silence_payload] * 10 + [
        track.encoder.dtx_payload
    ] * 3
    assert track.encoder.dtx_payload == track.encoder.silence_payload[:1]  # the TOC byte alone
    assert [(p.pts or 0) // FRAME_SAMPLES for p in packets] == [*range(10), 10, 30, 50]
    assert clock.now() - start == pytest.approx(50 * 0.02)  # each sent when its slot is due
    assert track.encoder.encoded_frames == encoded_before  # the pause is not encoded
    assert track.packets_sent == 13 and track.encoder.dtx_frames == 3


def test_a_dtx_frame_decodes_to_one_frame_of_digital_silence() -> None:
    """What aiortc's receiver (libopus through PyAV) makes of it: libopus conceals a frame whose data
    is empty, which after the silence frame is exact silence, and the stream goes on."""
    encoder = OpusFeedEncoder()
    packets = [encoder.encode(SILENCE, 0), encoder.dtx(960), encoder.dtx(20 * 960), encoder.dtx(40 * 960)]
    decoded, sizes = decode(packets)
    assert sizes == [FRAME_SAMPLES] * 4 and not decoded.any()


Player = Callable[[], None]


def pts(packet: OpusPacket) -> int:
    assert packet.pts is not None
    return packet.pts


async def play(
    track: PlayoutTrack, clock: FakeClock, seconds: float, at: dict[int, Player]
) -> list[tuple[float, OpusPacket]]:
    """Run aiortc's side (recv in a loop) against a clock moved by 1 ms steps; `at[ms]` runs then.
    Returns each packet with the time it was handed out."""
    sent: list[tuple[float, OpusPacket]] = []

    async def sender() -> None:
        while True:
            packet = await track.recv()
            sent.append((clock.now(), packet))

    task = asyncio.create_task(sender())
    try:
        for ms in range(round(seconds * 1000)):
            if ms in at:
                at[ms]()
            clock.advance(0.001)
            for _ in range(8):
                await asyncio.sleep(0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return sent


def timeline(packets: list[OpusPacket], samples: int) -> Int16Array:
    """What a listener plays: each decoded frame at its pts, silence where no packet came (NetEq plays
    a DTX pause out for as long as the timestamps say)."""
    decoder = av.CodecContext.create("libopus", "r")
    out = np.zeros(samples, dtype=np.int16)
    for packet in packets:
        pcm = np.concatenate(
            [
                f.to_ndarray().reshape(-1, f.layout.nb_channels)[:, 0].astype(np.int16)
                for f in decoder.decode(packet)
            ]
        )
        assert packet.pts is not None
        out[packet.pts : packet.pts + pcm.size] = pcm[: max(0, samples - packet.pts)]
    return out


async def test_speech_after_idle_goes_out_at_once_paced_and_decodes_like_continuous_packets() -> None:
    """idle -> speech -> idle -> speech -> idle, once with DTX and once with a packet in every slot.
    With DTX: the slots of the pauses are not sent (timestamps jump, one DTX frame per 400 ms), each
    talkspurt's first packet goes out in the slot after its audio arrived, as without DTX, then one per
    20 ms exactly,
    and a listener decoding by timestamps hears the same speech, onsets included, as from the
    continuous feed. So the encoder is right not to be fed the pauses: it is settled on silence, and
    a decoder that skipped them (or concealed a DTX frame) is where the encoder expects it to be."""
    first, second = read_pcm(utterance("u1-en")), read_pcm(utterance("u2-es"))
    enqueue_ms = (1_234, 1_234 + round(first.size / 24) + 1_567)
    seconds = enqueue_ms[1] / 1000 + second.size / 24_000 + 2.0
    runs: dict[bool, list[tuple[float, OpusPacket]]] = {}
    for dtx in (True, False):
        clock = FakeClock(100.0, auto_advance=False)
        track = PlayoutTrack(clock=clock, cushion_ms=0, hold_ms=0, max_lag_ms=60_000, dtx=dtx)

        def say(pcm: Int16Array, item: str, track: PlayoutTrack = track) -> Player:
            def go() -> None:
                track.enqueue(pcm.astype("<i2").tobytes(), key(item))
                track.end_item(key(item))

            return go

        actions = {enqueue_ms[0]: say(first, "a"), enqueue_ms[1]: say(second, "b")}
        runs[dtx] = await play(track, clock, seconds, actions)
    sent, continuous = runs[True], runs[False]
    start = sent[0][0]  # slot 0: the first recv
    assert start == continuous[0][0] and start - 100.0 < 0.0015

    slots = [pts(p) // FRAME_SAMPLES for _, p in sent]
    assert all(pts(p) % FRAME_SAMPLES == 0 for _, p in sent) and slots == sorted(set(slots))
    # The first pause: the 200 ms hangover, then a DTX frame every 400 ms until the speech.
    first_spurt = (enqueue_ms[0] - 1) // 20
    assert [s for s in slots if s < first_spurt] == [*range(10), 10, 30, 50]
    assert [s for s, _ in zip(range(len(continuous)), continuous, strict=False) if s < first_spurt] == list(
        range(first_spurt)
    )
    # Every packet is handed out in its own slot: pacing is exact, pts follow the clock.
    for at, packet in sent:
        assert at - (start + pts(packet) / 48_000) == pytest.approx(0, abs=0.0015), (at, pts(packet))
    dtx_payload = bytes(sent[-1][1])
    assert len(dtx_payload) == 1

    def pcm_frames(enqueued: int) -> int:
        return (first if enqueued == enqueue_ms[0] else second).size // 480

    # Pauses: DTX frames 400 ms apart at most; talkspurts: every slot.
    assert max(np.diff(slots)) <= 20
    for enqueued in enqueue_ms:
        spoken = 100.0 + enqueued / 1000
        spurt = next(n for n, (at, _) in enumerate(sent) if at >= spoken)
        at, packet = sent[spurt]
        assert at - spoken < 0.021  # in the next slot, not at the next keep-alive
        assert pts(packet) // FRAME_SAMPLES == int((spoken - start) / 0.02) + 1
        assert next(pts(p) for t, p in continuous if t >= spoken) == pts(packet)  # as without DTX
        talkspurt = slots[spurt : spurt + pcm_frames(enqueued)]
        assert talkspurt == list(range(slots[spurt], slots[spurt] + len(talkspurt)))  # every slot
        assert dtx_payload not in {bytes(p) for _, p in sent[spurt : spurt + len(talkspurt)]}
    # The second pause (from the end of the first utterance's slots) went out as DTX too.
    first_end = slots[len([s for s in slots if s < first_spurt])] + pcm_frames(enqueue_ms[0])
    second_start = int((100.0 + enqueue_ms[1] / 1000 - start) / 0.02) + 1
    pause = [s for s in slots if first_end <= s < second_start]
    assert len(pause) < (second_start - first_end) / 2, (pause, first_end, second_start)
    # The same speech at the same times as the continuous feed, onsets included: sample for sample.
    samples = round(seconds * 48_000)
    heard = timeline([p for _, p in sent], samples)
    reference = timeline([p for _, p in continuous], samples)
    assert np.array_equal(heard, reference)
    for enqueued, pcm in zip(enqueue_ms, (first, second), strict=True):
        onset = (int((100.0 + enqueued / 1000 - start) / 0.02) + 1) * FRAME_SAMPLES
        span = slice(onset, onset + pcm.size * 2)
        assert aligned_snr_db(upsample(pcm), heard[span.start : span.stop + 1_000]) > 15
    assert not heard[: first_spurt * FRAME_SAMPLES].any()  # the first pause: silence
    assert np.abs(heard[-48_000:]).max() == 0  # and the last


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


async def test_stopping_the_track_ends_an_idle_wait_at_once() -> None:
    track, clock = new_track()
    packets = [await track.recv() for _ in range(11)]  # the hangover's slots, then the first DTX frame
    assert bytes(packets[-1]) == track.encoder.dtx_payload
    clock.auto_advance = False
    task = asyncio.create_task(track.recv())
    clock.advance(0.02)  # slot 11 is due: not sent; recv waits for slot 30's keep-alive
    for _ in range(5):
        await asyncio.sleep(0)
    assert clock.waiting == 1 and not task.done()
    track.stop()
    with pytest.raises(MediaStreamError):
        async with asyncio.timeout(1):
            await task
    assert clock.waiting == 0  # the sleeper was cancelled, not left behind
