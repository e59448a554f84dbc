"""Energy VAD of the fake server: turns found from the audio itself, with the session's settings."""

from __future__ import annotations

import numpy as np

from translator_bot.fake.vad import (
    EnergyVad,
    SpeechStarted,
    SpeechStopped,
    VadConfig,
    VadEvent,
    threshold_dbfs,
)
from translator_bot.fixtures import read_pcm, utterance

SR = 24_000


def _tone(ms: int, level: float = 0.3) -> np.ndarray:
    t = np.arange(SR * ms // 1000) / SR
    return (np.sin(2 * np.pi * 220 * t) * level * 32767).astype(np.int16)


def _silence(ms: int) -> np.ndarray:
    return np.zeros(SR * ms // 1000, dtype=np.int16)


def _feed_in_chunks(vad: EnergyVad, pcm: np.ndarray, chunk: int = 480) -> list[VadEvent]:
    events: list[VadEvent] = []
    for i in range(0, len(pcm), chunk):
        events += vad.feed(pcm[i : i + chunk])
    return events


def test_threshold_maps_probability_to_level():
    assert threshold_dbfs(0.5) == -40.0
    assert threshold_dbfs(0.0) == -60.0
    assert threshold_dbfs(2.0) == threshold_dbfs(1.0) == -20.0


def test_silence_never_starts_a_turn():
    vad = EnergyVad()
    assert _feed_in_chunks(vad, _silence(5000)) == []
    assert vad.position_ms == 5000


def test_turn_has_prefix_padding_and_ends_after_silence_duration():
    vad = EnergyVad(VadConfig(prefix_padding_ms=300, silence_duration_ms=500))
    pcm = np.concatenate([_silence(1000), _tone(800), _silence(400)])
    events = _feed_in_chunks(vad, pcm, chunk=333)  # odd chunk sizes: frames span appends
    assert events == [SpeechStarted(audio_start_ms=700, voiced_ms=1000)]
    assert vad.in_speech
    events = _feed_in_chunks(vad, _silence(200))
    assert events == [SpeechStopped(audio_end_ms=1800)]
    assert not vad.in_speech


def test_short_pause_does_not_end_the_turn_but_a_long_one_does():
    vad = EnergyVad(VadConfig(silence_duration_ms=300))
    pcm = np.concatenate([_tone(300), _silence(250), _tone(300), _silence(400), _tone(200), _silence(400)])
    events = _feed_in_chunks(vad, pcm)
    assert [type(e).__name__ for e in events] == [
        "SpeechStarted",
        "SpeechStopped",
        "SpeechStarted",
        "SpeechStopped",
    ]
    assert events[1] == SpeechStopped(audio_end_ms=850)


def test_quiet_audio_below_threshold_is_not_speech_and_level_counts():
    quiet = _tone(1000, level=0.003)  # about -53 dBFS
    assert _feed_in_chunks(EnergyVad(VadConfig(threshold=0.5)), quiet) == []
    assert len(_feed_in_chunks(EnergyVad(VadConfig(threshold=0.1)), quiet)) == 1  # -56 dBFS threshold


def test_a_click_is_not_speech():
    click = np.zeros(SR // 10, dtype=np.int16)
    click[100:300] = 20000
    assert _feed_in_chunks(EnergyVad(), np.concatenate([click, _silence(1000)])) == []


def test_flush_ends_an_open_turn_and_origin_offsets_positions():
    vad = EnergyVad(VadConfig(prefix_padding_ms=100), origin_ms=5000)
    events = vad.feed(_tone(500))
    assert events == [SpeechStarted(audio_start_ms=5000, voiced_ms=5000)]
    assert vad.flush() == [SpeechStopped(audio_end_ms=5500)]
    assert vad.flush() == []


def test_each_fixture_is_one_turn_with_the_default_settings():
    for utterance_id in ("u1-en", "u1-es", "u1-de", "u4-es"):
        pcm = np.concatenate([_silence(500), read_pcm(utterance(utterance_id)), _silence(1000)])
        events = _feed_in_chunks(EnergyVad(), pcm)
        assert [type(e) for e in events] == [SpeechStarted, SpeechStopped], utterance_id
