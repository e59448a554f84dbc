"""The one energy detector: turns found from the audio itself, with the fake server's `server_vad` settings
and with the 20 ms tuning of the engine's gate and the latency tracker."""

from __future__ import annotations

import numpy as np

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import (
    ServerVadConfig,
    VoiceActivityConfig,
    VoiceActivityDetector,
    VoiceEvent,
    VoiceStarted,
    VoiceStopped,
    _frame_power,
    amplitude_dbfs,
    frame_levels,
    server_vad_level_dbfs,
)
from translator_bot.fixtures import read_pcm, utterance

SR = 24_000


def _tone(ms: int, level: float = 0.3) -> np.ndarray:
    t = np.arange(SR * ms // 1000) / SR
    return (np.sin(2 * np.pi * 220 * t) * level * 32767).astype(np.int16)


def _silence(ms: int) -> np.ndarray:
    return np.zeros(SR * ms // 1000, dtype=np.int16)


def _ms(ms: int) -> int:
    return SR * ms // 1000


def turn_detector(config: ServerVadConfig | None = None, *, origin_ms: int = 0) -> VoiceActivityDetector:
    """The fake server's turn detector for a session's `server_vad` settings."""
    return VoiceActivityDetector((config or ServerVadConfig()).detector(), origin=_ms(origin_ms))


def _feed_in_chunks(vad: VoiceActivityDetector, pcm: np.ndarray, chunk: int = 480) -> list[VoiceEvent]:
    events: list[VoiceEvent] = []
    for i in range(0, len(pcm), chunk):
        events += vad.feed(pcm[i : i + chunk])
    return events


def test_threshold_maps_probability_to_level():
    assert server_vad_level_dbfs(0.5) == -40.0
    assert server_vad_level_dbfs(0.0) == -60.0
    assert server_vad_level_dbfs(2.0) == server_vad_level_dbfs(1.0) == -20.0


def test_silence_never_starts_a_turn():
    vad = turn_detector()
    assert _feed_in_chunks(vad, _silence(5000)) == []
    assert vad.position_ms == 5000


def test_turn_has_prefix_padding_and_ends_after_silence_duration():
    vad = turn_detector(ServerVadConfig(prefix_padding_ms=300, silence_duration_ms=500))
    pcm = np.concatenate([_silence(1000), _tone(800), _silence(400)])
    events = _feed_in_chunks(vad, pcm, chunk=333)  # odd chunk sizes: frames span appends
    assert events == [VoiceStarted(start=_ms(700), voiced=_ms(1000))]
    assert vad.in_speech
    events = _feed_in_chunks(vad, _silence(200))
    assert events == [VoiceStopped(end=_ms(1800))]
    assert not vad.in_speech


def test_short_pause_does_not_end_the_turn_but_a_long_one_does():
    vad = turn_detector(ServerVadConfig(silence_duration_ms=300))
    pcm = np.concatenate([_tone(300), _silence(250), _tone(300), _silence(400), _tone(200), _silence(400)])
    events = _feed_in_chunks(vad, pcm)
    assert [type(e).__name__ for e in events] == [
        "VoiceStarted",
        "VoiceStopped",
        "VoiceStarted",
        "VoiceStopped",
    ]
    assert events[1] == VoiceStopped(end=_ms(850))


def test_quiet_audio_below_threshold_is_not_speech_and_level_counts():
    quiet = _tone(1000, level=0.003)  # about -53 dBFS
    assert _feed_in_chunks(turn_detector(ServerVadConfig(threshold=0.5)), quiet) == []
    assert (
        len(_feed_in_chunks(turn_detector(ServerVadConfig(threshold=0.1)), quiet)) == 1
    )  # -56 dBFS threshold


def test_a_click_is_not_speech():
    click = np.zeros(SR // 10, dtype=np.int16)
    click[100:300] = 20000
    assert _feed_in_chunks(turn_detector(), np.concatenate([click, _silence(1000)])) == []


def test_flush_ends_an_open_turn_and_origin_offsets_positions():
    vad = turn_detector(ServerVadConfig(prefix_padding_ms=100), origin_ms=5000)
    events = vad.feed(_tone(500))
    assert events == [VoiceStarted(start=_ms(5000), voiced=_ms(5000))]
    assert vad.flush() == [VoiceStopped(end=_ms(5500))]
    assert vad.flush() == []


def test_each_fixture_is_one_turn_with_the_default_settings():
    for utterance_id in ("u1-en", "u1-es", "u1-de", "u4-es"):
        pcm = np.concatenate([_silence(500), read_pcm(utterance(utterance_id)), _silence(1000)])
        events = _feed_in_chunks(turn_detector(), pcm)
        assert [type(e) for e in events] == [VoiceStarted, VoiceStopped], utterance_id


def test_events_give_positions_in_samples_and_milliseconds():
    started, stopped = VoiceStarted(start=_ms(700), voiced=_ms(1000)), VoiceStopped(end=_ms(1800))
    assert (started.start_ms, started.voiced_ms, stopped.end_ms) == (700, 1000, 1800)


def test_frame_levels_in_dbfs():
    levels = frame_levels(np.concatenate([_silence(20), _tone(20, level=0.5), _silence(5)]), 480)
    assert len(levels) == 2  # the trailing partial frame is not a frame yet
    assert levels[0] < -100 and abs(levels[1] - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1
    assert abs(amplitude_dbfs(300.0) - (-40.77)) < 0.01


GATE_LIKE = VoiceActivityConfig(threshold_dbfs=-40.0, frame_ms=20, min_speech_ms=20, hangover_ms=200)


def test_one_voiced_frame_starts_speech_when_min_speech_is_one_frame():
    detector = VoiceActivityDetector(GATE_LIKE)
    loud_frame = _tone(20)
    assert detector.feed(np.concatenate([_silence(100), loud_frame])) == [VoiceStarted(_ms(100), _ms(100))]
    assert detector.last_voiced_end == _ms(120)
    assert detector.feed(_silence(180)) == []  # 180 ms of hangover: still speech
    assert detector.feed(_silence(20)) == [VoiceStopped(_ms(120))]
    assert detector.position == detector.received == _ms(320)


def test_reset_forgets_speech_without_an_event_and_frames_cannot_change():
    detector = VoiceActivityDetector(GATE_LIKE)
    detector.feed(_tone(100))
    detector.reset()
    assert not detector.in_speech and detector.feed(_silence(500)) == [] and detector.flush() == []
    detector.reconfigure(VoiceActivityConfig(threshold_dbfs=-30.0, frame_ms=20, hangover_ms=100))
    assert detector.config.hangover_ms == 100
    try:
        detector.reconfigure(VoiceActivityConfig(frame_ms=10))
    except ValueError:
        pass
    else:
        raise AssertionError("a running detector must refuse another frame size")


def test_frame_power_is_the_mean_square_bit_for_bit() -> None:
    # The detector's threshold compares with this power: the cheaper sum must not move any frame
    # across it, so it is the very float32 value np.mean gives.
    samples = (np.random.default_rng(7).standard_normal(48_000) * 3000).astype(np.int16)
    frames = samples.astype(np.float32).reshape(-1, 480)
    assert np.array_equal(_frame_power(samples, 480), np.mean(frames * frames, axis=1))


def test_whole_frame_chunks_carry_nothing_and_partial_ones_still_do() -> None:
    detector = VoiceActivityDetector(VoiceActivityConfig(frame_ms=20, min_speech_ms=20))
    detector.feed(np.zeros(480, dtype=np.int16))
    assert detector.received == detector.position == 480
    detector.feed(np.full(300, 5000, dtype=np.int16))
    assert (detector.position, detector.received) == (480, 780)
    events = detector.feed(np.full(180, 5000, dtype=np.int16))
    assert detector.received == detector.position == 960 and len(events) == 1


def test_the_sound_floor_tracks_quiet_sound_the_speech_threshold_ignores() -> None:
    # 100 ms of digital silence, 60 ms at about -50 dBFS (under -40, over -60), 100 ms of silence.
    quiet = np.full(int(MODEL_RATE * 0.06), 100, dtype=np.int16)
    silence = np.zeros(int(MODEL_RATE * 0.1), dtype=np.int16)
    detector = VoiceActivityDetector(VoiceActivityConfig(threshold_dbfs=-40.0), sound_floor_dbfs=-60.0)
    assert detector.last_sound_end is None
    assert detector.feed(np.concatenate([silence, quiet, silence])) == []
    assert detector.last_voiced_end is None
    assert detector.last_sound_end == int(MODEL_RATE * 0.16)
    assert VoiceActivityDetector(VoiceActivityConfig()).last_sound_end is None
