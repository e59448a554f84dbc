"""One item's 24 kHz byte stream -> 48 kHz samples: odd chunks, the flushed tail, a failing filter."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from translator_bot.audio import playout_upsample
from translator_bot.audio.playout_upsample import ItemUpsampler


def tone(samples: int) -> bytes:
    t = np.arange(samples) / 24_000
    return (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def upsample_all(chunks: list[bytes]) -> np.ndarray:
    upsampler = ItemUpsampler()
    parts = []
    for chunk in chunks:
        samples = upsampler.whole_samples(chunk)
        if samples.size:  # (as the queue does: a lone byte has nothing to upsample yet)
            parts.append(upsampler.upsample(samples))
    return np.concatenate([*parts, upsampler.flush()])


def test_a_byte_stream_cut_anywhere_upsamples_like_one_chunk() -> None:
    audio = tone(4_800)
    whole = upsample_all([audio])
    cuts = [0, 1, 2, 777, 778, 3001, len(audio)]
    pieces = [audio[a:b] for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(upsample_all(pieces), whole)
    assert whole.size == 2 * 4_800  # every input sample, twice, once the tail is flushed


def test_the_end_drops_a_half_sample_still_carried() -> None:
    upsampler = ItemUpsampler()
    assert upsampler.whole_samples(b"\x01").size == 0
    assert upsampler.carry == b"\x01"
    upsampler.flush()
    assert upsampler.carry == b""


def test_a_skipped_chunk_keeps_the_sample_alignment() -> None:
    upsampler = ItemUpsampler()
    upsampler.whole_samples(b"\x01\x02\x03")  # one sample, one byte carried
    upsampler.skip(b"\x04\x05\x06", 3)  # 1 + 3 bytes: whole samples, nothing carried after it
    assert upsampler.carry == b""
    upsampler.skip(b"\x07\x08\x09", 3)
    assert upsampler.carry == b"\x09"


def test_a_failing_filter_is_started_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    upsampler = ItemUpsampler()
    samples = upsampler.whole_samples(tone(480))

    class Broken:
        def __init__(self, rate: int) -> None:
            pass

        def resample(self, frame: object) -> list[object]:
            raise ValueError("Frame does not match AudioResampler setup.")

    monkeypatch.setattr(playout_upsample, "MonoResampler", Broken)
    with pytest.raises(ValueError):
        upsampler.upsample(samples)
    monkeypatch.undo()
    assert upsampler.upsample(samples).size > 0
