"""The fake's fixture recogniser: robust to what a correct audio path does to speech (resampling,
Opus, level changes), blind to what a broken one does (wrong rate, stereo read as mono).

Scores are mean cosine distances (0 = identical); the printed figures are the margins reported.
"""

from __future__ import annotations

import fractions
import math

import av
import numpy as np
import pytest
import soxr

from translator_bot.fake.catalog import load_catalog
from translator_bot.fake.recognizer import DEFAULT_MAX_SCORE, DEFAULT_MIN_MARGIN, FixtureRecognizer
from translator_bot.fixtures import fixtures_dir, load_manifest, read_pcm, read_wav

IDS = [u.id for u in load_manifest()]


@pytest.fixture(scope="module")
def recognizer() -> FixtureRecognizer:
    return load_catalog().recognizer


def _int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _round_trip_48k(pcm: np.ndarray, gain_db: float = 0.0) -> np.ndarray:
    up = soxr.resample(pcm.astype(np.float32), 24_000, 48_000)
    down = soxr.resample(up, 48_000, 24_000)
    return _int16(down * 10 ** (gain_db / 20))


def _opus_round_trip(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    """24k -> 48k stereo -> Opus 32 kb/s -> decode -> downmix -> 24k, as the room path does."""
    x48 = _int16(soxr.resample(pcm.astype(np.float32), 24_000, 48_000) * 10 ** (gain_db / 20))
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48_000, "stereo", "s16", 32_000
    enc.time_base = fractions.Fraction(1, 48_000)
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate, dec.layout = 48_000, "stereo"
    decoded: list[np.ndarray] = []
    packets = []
    for pts, i in enumerate(range(0, len(x48) - 959, 960)):
        frame = av.AudioFrame.from_ndarray(
            np.repeat(x48[i : i + 960], 2)[None, :], format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48_000, pts * 960
        packets += enc.encode(frame)
    packets += enc.encode(None)
    for packet in packets:
        decoded += [f.to_ndarray().reshape(-1, 2).mean(axis=1) for f in dec.decode(packet)]
    mono48 = np.concatenate(decoded)
    return _int16(soxr.resample(mono48.astype(np.float32), 48_000, 24_000))


def _ranked(
    recognizer: FixtureRecognizer, pcm: np.ndarray, tempo_gate: bool = True
) -> list[tuple[str, float]]:
    return sorted(recognizer.scores(pcm, tempo_gate=tempo_gate).items(), key=lambda kv: kv[1])


def test_every_fixture_is_recognised_with_a_wide_margin(recognizer):
    worst_margin = math.inf
    for u in load_manifest():
        result = recognizer.recognise(read_pcm(u))
        assert result.utterance_id == u.id, result
        worst_margin = min(worst_margin, result.runner_up_score - result.score)
    print(f"\nclean fixtures: worst margin {worst_margin:.3f}")
    assert worst_margin > 2 * DEFAULT_MIN_MARGIN


def test_resampling_round_trip_and_level_changes_are_recognised(recognizer):
    gains = [-12.0, 0.0, 6.0]
    for index, u in enumerate(load_manifest()):
        result = recognizer.recognise(_round_trip_48k(read_pcm(u), gains[index % 3]))
        assert result.utterance_id == u.id, result
        assert result.score < DEFAULT_MAX_SCORE / 2


def test_opus_round_trip_is_recognised(recognizer):
    lines = []
    for utterance_id in ("u1-en", "u2-es", "u3-de", "u4-en"):
        pcm = read_pcm(load_catalog().utterance(utterance_id))
        result = recognizer.recognise(_opus_round_trip(pcm, gain_db=-6.0))
        assert result.utterance_id == utterance_id, result
        lines.append(
            f"{utterance_id}: {result.score:.3f} vs {result.runner_up_id} {result.runner_up_score:.3f}"
        )
    print("\nopus round trip:", "; ".join(lines))


def test_48k_samples_read_as_24k_are_not_recognised(recognizer):
    """Half speed, an octave down: what a client that skips resampling sends."""
    for u in load_manifest():
        half_speed = _int16(soxr.resample(read_pcm(u).astype(np.float32), 24_000, 48_000))
        assert recognizer.recognise(half_speed).utterance_id is None, u.id
        if u.group == "u1":  # even without the tempo gate the spectra are far apart
            best_id, best = _ranked(recognizer, half_speed, tempo_gate=False)[0]
            assert best > DEFAULT_MAX_SCORE, (u.id, best_id, best)


def test_double_speed_is_not_recognised(recognizer):
    for u in load_manifest():
        double = _int16(soxr.resample(read_pcm(u).astype(np.float32), 48_000, 24_000))
        assert recognizer.recognise(double).utterance_id is None, u.id


def test_stereo_recording_is_recognised_only_when_downmixed_and_resampled(recognizer):
    stereo, rate = read_wav(fixtures_dir() / "u1-en-48k-stereo.wav")
    assert (rate, stereo.shape[1]) == (48_000, 2)
    right = _int16(soxr.resample(stereo.mean(axis=1).astype(np.float32), 48_000, 24_000))
    assert recognizer.recognise(right).utterance_id == "u1-en"

    interleaved = stereo.reshape(-1)  # L R L R ... taken as mono samples
    wrong = {
        "interleaved read as 24k mono": interleaved,
        "interleaved read as 48k mono, resampled": _int16(
            soxr.resample(interleaved.astype(np.float32), 48_000, 24_000)
        ),
        "one channel at 48k read as 24k": stereo[:, 0].copy(),
    }
    for name, pcm in wrong.items():
        assert recognizer.recognise(pcm).utterance_id is None, name
        ungated = _ranked(recognizer, pcm, tempo_gate=False)[0]
        print(f"\n{name}: best ungated {ungated[0]} {ungated[1]:.3f}")
        assert ungated[1] > DEFAULT_MAX_SCORE, name


def test_silence_noise_and_fragments_are_not_recognised(recognizer):
    rng = np.random.default_rng(1)
    assert recognizer.recognise(np.zeros(48_000, np.int16)).reason == "no_sound"
    assert recognizer.recognise(_int16(rng.normal(0, 3000, 48_000))).utterance_id is None
    first_half = read_pcm(load_catalog().utterance("u2-en"))[:30_000]
    assert recognizer.recognise(first_half).utterance_id is None


def test_two_utterances_back_to_back_are_not_one_of_them(recognizer):
    catalog = load_catalog()
    both = np.concatenate([read_pcm(catalog.utterance("u3-en")), read_pcm(catalog.utterance("u3-es"))])
    assert recognizer.recognise(both).utterance_id is None


def test_margins_table(recognizer):
    """Benchmark-style report: best vs next best per fixture, and wrong-rate scores (not timed)."""
    import time

    rows = []
    for u in load_manifest():
        pcm = _round_trip_48k(read_pcm(u), -6.0)
        start = time.perf_counter()
        ranked = _ranked(recognizer, pcm, tempo_gate=False)
        elapsed = (time.perf_counter() - start) * 1000
        slow = _int16(soxr.resample(read_pcm(u).astype(np.float32), 24_000, 48_000))
        slow_best = _ranked(recognizer, slow, tempo_gate=False)[0]
        rows.append(
            f"{u.id}: {ranked[0][0]} {ranked[0][1]:.3f} | next {ranked[1][0]} {ranked[1][1]:.3f} | "
            f"half-speed best {slow_best[0]} {slow_best[1]:.3f} | {elapsed:.0f} ms all 12"
        )
        assert ranked[0][0] == u.id
    print("\n" + "\n".join(rows))
    assert set(recognizer.ids) == set(IDS)
