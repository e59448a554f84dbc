"""Inbound conversion: room frames of any format -> 24 kHz mono pcm16, stateful across frames."""

from __future__ import annotations

import fractions
import os
from collections.abc import Iterator
from typing import Any

import av
import numpy as np
import pytest
import soxr

from translator_bot import metrics
from translator_bot.audio import inbound
from translator_bot.audio.inbound import InboundConverter
from translator_bot.audio.pcm import MonoResampler
from translator_bot.fixtures import fixtures_dir, read_wav

STEREO_FIXTURE = "u1-en-48k-stereo.wav"


def make_frame(
    samples: np.ndarray,
    *,
    rate: int = 48_000,
    fmt: str = "s16",
    pts: int | None = 0,
    time_base: fractions.Fraction | None = None,
) -> av.AudioFrame:
    """A frame from float samples in [-1, 1] shaped (n, channels)."""
    channels = samples.shape[1]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    planar = fmt.endswith("p")
    base = fmt.rstrip("p")
    if base == "s16":
        data: np.ndarray = np.round(samples * 32767).astype(np.int16)
    elif base == "s32":
        data = np.round(samples * 2147483647).astype(np.int32)
    elif base == "flt":
        data = samples.astype(np.float32)
    else:
        raise AssertionError(fmt)
    array = np.ascontiguousarray(data.T) if planar else data.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = time_base if time_base is not None else fractions.Fraction(1, rate)
    return frame


def frames_of(signal: np.ndarray, rate: int, frame_ms: int = 20, **kwargs: Any) -> Iterator[av.AudioFrame]:
    step = rate * frame_ms // 1000
    for start in range(0, len(signal), step):
        yield make_frame(signal[start : start + step], rate=rate, pts=start, **kwargs)


def convert_all(converter: InboundConverter, frames: Iterator[av.AudioFrame]) -> np.ndarray:
    out = b"".join(converter.convert(frame) for frame in frames) + converter.flush()
    return np.frombuffer(out, dtype="<i2").astype(np.float64)


def tone(
    freq: float, seconds: float, rate: int, channels: int = 2, amplitude: float = 0.5, fade_ms: float = 0
) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = amplitude * np.sin(2 * np.pi * freq * t)
    if fade_ms:
        # A tone switched on at full level is a broadband click, which is not what is being measured.
        n = round(fade_ms * rate / 1000)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
        mono[:n] *= ramp
        mono[-n:] *= ramp[::-1]
    return np.repeat(mono[:, None], channels, axis=1)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(len(reference), len(test))
    error = test[:n] - reference[:n]
    return float(10 * np.log10(np.sum(reference[:n] ** 2) / np.sum(error**2)))


def warnings(reason: str) -> float:
    return metrics.counter_value(metrics.AUDIO_INPUT_WARNINGS, reason=reason)


@pytest.fixture(scope="module")
def stereo_speech() -> np.ndarray:
    samples, rate = read_wav(fixtures_dir() / STEREO_FIXTURE)
    assert rate == 48_000 and samples.shape[1] == 2, f"{STEREO_FIXTURE} is not 48 kHz stereo"
    return samples


@pytest.fixture(scope="module")
def offline_reference(stereo_speech: np.ndarray) -> np.ndarray:
    """The whole file downmixed and resampled in one go by an independent resampler (soxr VHQ)."""
    mono = stereo_speech.astype(np.float64).mean(axis=1)
    return np.asarray(soxr.resample(mono, 48_000, 24_000, quality="VHQ"), dtype=np.float64)


def convert_speech_frames(stereo_speech: np.ndarray) -> tuple[np.ndarray, list[int]]:
    converter = InboundConverter()
    pieces: list[bytes] = []
    for start in range(0, len(stereo_speech), 960):
        chunk = np.ascontiguousarray(stereo_speech[start : start + 960])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = start
        frame.time_base = fractions.Fraction(1, 48_000)
        pieces.append(converter.convert(frame))
    pieces.append(converter.flush())
    sizes = [len(p) // 2 for p in pieces]
    return np.frombuffer(b"".join(pieces), dtype="<i2").astype(np.float64), sizes


def test_frame_by_frame_matches_offline_whole_file_resample(
    stereo_speech: np.ndarray, offline_reference: np.ndarray
) -> None:
    converted, sizes = convert_speech_frames(stereo_speech)
    # Nothing lost or invented: exactly half the input samples come out once flushed.
    assert len(converted) == len(offline_reference) == len(stereo_speech) // 2
    # Low added latency: the first 20 ms frame already yields nearly its 480 samples.
    assert sizes[0] >= 440
    assert snr_db(offline_reference, converted) >= 70


def boundary_error_ratio(reference: np.ndarray, converted: np.ndarray, frame: int = 480) -> float:
    """Error energy within 1 ms of each 20 ms frame edge, relative to the error energy elsewhere."""
    n = min(len(reference), len(converted))
    error = (converted[:n] - reference[:n]) ** 2
    position = np.arange(n) % frame
    near_edge = (position < 24) | (position >= frame - 24)
    # Skip the very start and end, where both resamplers see the signal edge.
    middle = (np.arange(n) > 4 * frame) & (np.arange(n) < n - 4 * frame)
    return float(error[near_edge & middle].mean() / error[~near_edge & middle].mean())


def test_no_energy_bump_at_frame_boundaries(stereo_speech: np.ndarray, offline_reference: np.ndarray) -> None:
    converted, _ = convert_speech_frames(stereo_speech)
    ratio = boundary_error_ratio(offline_reference, converted)
    assert ratio < 2.0, f"error near 20 ms edges is {ratio:.1f}x the error elsewhere"

    # The same measure does catch the per-frame stateless approach (soxr restarted on every frame,
    # which is what a per-frame librosa.resample call does).
    mono = stereo_speech.astype(np.float64).mean(axis=1)
    stateless = np.concatenate(
        [soxr.resample(mono[i : i + 960], 48_000, 24_000, quality="HQ") for i in range(0, len(mono), 960)]
    )
    assert boundary_error_ratio(offline_reference, stateless) > 10


def test_15khz_tone_is_removed_and_1khz_kept() -> None:
    high = convert_all(InboundConverter(), frames_of(tone(15_000, 1.0, 48_000, fade_ms=10), 48_000))
    low = convert_all(InboundConverter(), frames_of(tone(1_000, 1.0, 48_000), 48_000))
    full_scale_rms = 0.5 * 32767 / np.sqrt(2)
    high_db = 20 * np.log10(np.sqrt(np.mean(high**2)) / full_scale_rms + 1e-12)
    low_db = 20 * np.log10(np.sqrt(np.mean(low[2400:-2400] ** 2)) / full_scale_rms)
    assert high_db < -70, f"15 kHz tone only down {high_db:.1f} dB (aliased into the band)"
    assert abs(low_db) < 0.1


@pytest.mark.parametrize(
    ("rate", "channels", "fmt"),
    [
        (48_000, 2, "s16"),
        (48_000, 1, "s16"),
        (48_000, 2, "s16p"),
        (48_000, 2, "fltp"),
        (48_000, 1, "flt"),
        (48_000, 2, "s32"),
        (48_000, 6, "fltp"),
        (44_100, 2, "s16"),
        (16_000, 1, "s16"),
        (8_000, 1, "flt"),
        (96_000, 2, "s16"),
        (24_000, 1, "s16"),
    ],
)
def test_any_format_and_rate_becomes_24k_mono(rate: int, channels: int, fmt: str) -> None:
    signal = tone(1_000, 0.5, rate, channels=channels, amplitude=0.3)
    out = convert_all(InboundConverter(), frames_of(signal, rate, fmt=fmt))
    assert abs(len(out) - 12_000) <= 2
    expected = 0.3 * 32767 * np.sin(2 * np.pi * 1_000 * np.arange(len(out)) / 24_000)
    if channels == 6:
        # A 5.1 downmix scales the level; the pitch and timing must still be right.
        gain = float(np.dot(out, expected) / np.dot(expected, expected))
        assert 0.2 < gain < 2.0
        expected = gain * expected
    assert snr_db(expected[960:-960], out[960:-960]) > 40


def test_format_change_mid_stream_is_absorbed() -> None:
    before = warnings("format_change")
    converter = InboundConverter()
    out = b"".join(converter.convert(f) for f in frames_of(tone(500, 0.2, 48_000), 48_000))
    second = tone(500, 0.2, 44_100, channels=1)
    step = 441
    for i in range(0, len(second), step):
        out += converter.convert(make_frame(second[i : i + step], rate=44_100, fmt="flt", pts=8820 + i))
    third = tone(500, 0.2, 16_000, channels=2)
    for i in range(0, len(third), 320):
        out += converter.convert(make_frame(third[i : i + 320], rate=16_000, fmt="s16p", pts=None))
    out += converter.flush()
    assert abs(len(out) // 2 - 3 * 4_800) <= 3
    assert warnings("format_change") - before == 2


def test_pts_gap_is_filled_with_silence_up_to_a_bound() -> None:
    before = warnings("pts_gap")
    converter = InboundConverter(max_gap_fill_ms=1000)
    signal = tone(1_000, 0.2, 48_000)
    out = b"".join(converter.convert(f) for f in frames_of(signal, 48_000))
    # 100 ms of packets lost: the next frame's pts is 100 ms later than expected.
    gap_start = len(out) // 2
    out += b"".join(
        converter.convert(make_frame(signal[i : i + 960], pts=9600 + 4800 + i)) for i in range(0, 9600, 960)
    )
    # 5 s without packets: only the bound (1 s) becomes silence.
    out += b"".join(
        converter.convert(make_frame(signal[i : i + 960], pts=24_000 + 240_000 + i))
        for i in range(0, 9600, 960)
    )
    out += converter.flush()
    samples = np.frombuffer(out, dtype="<i2")
    assert abs(len(samples) - (4_800 + 2_400 + 4_800 + 24_000 + 4_800)) <= 2
    # The resampler's tail of the audio before the gap (under 1 ms), then silence.
    assert np.all(samples[gap_start + 48 : gap_start + 2_400] == 0)
    assert np.abs(samples[gap_start + 2_400 + 40 : gap_start + 2_400 + 400]).max() > 5_000
    assert warnings("pts_gap") - before == 2


def test_backward_pts_and_missing_pts_add_no_silence() -> None:
    before = warnings("pts_discontinuity")
    converter = InboundConverter()
    signal = tone(1_000, 0.2, 48_000)
    out = b"".join(converter.convert(f) for f in frames_of(signal, 48_000))
    out += b"".join(converter.convert(make_frame(signal[i : i + 960], pts=i)) for i in range(0, 9600, 960))
    out += b"".join(converter.convert(make_frame(signal[i : i + 960], pts=None)) for i in range(0, 9600, 960))
    out += converter.flush()
    assert abs(len(out) // 2 - 3 * 4_800) <= 2
    assert warnings("pts_discontinuity") - before == 1


def test_time_base_other_than_the_sample_rate() -> None:
    converter = InboundConverter()
    signal = tone(1_000, 0.2, 48_000)
    before = warnings("pts_gap")
    # Milliseconds as the time base: consecutive 20 ms frames are contiguous, not gaps.
    out = b"".join(
        converter.convert(make_frame(signal[i : i + 960], pts=i // 48, time_base=fractions.Fraction(1, 1000)))
        for i in range(0, len(signal), 960)
    )
    out += converter.flush()
    assert len(out) // 2 == 4_800
    assert warnings("pts_gap") == before


def test_bad_input_never_raises_and_is_counted() -> None:
    converter = InboundConverter()
    good = make_frame(tone(1_000, 0.02, 48_000))
    assert len(converter.convert(good)) > 0

    before_type = warnings("not_audio_frame")
    assert converter.convert(None) == b""  # type: ignore[arg-type]
    assert converter.convert(b"\x00\x01" * 960) == b""  # type: ignore[arg-type]
    assert warnings("not_audio_frame") - before_type == 2

    before_empty = warnings("empty_frame")
    empty = av.AudioFrame(format="s16", layout="stereo", samples=0)
    empty.sample_rate = 48_000
    assert converter.convert(empty) == b""
    assert warnings("empty_frame") - before_empty == 1

    before_rate = warnings("malformed_frame")
    no_rate = av.AudioFrame(format="s16", layout="stereo", samples=960)
    assert converter.convert(no_rate) == b""
    assert warnings("malformed_frame") - before_rate == 1

    before_big = warnings("oversized_frame")
    huge = make_frame(np.zeros((48_000 * 6, 2)), pts=960)
    assert converter.convert(huge) == b""
    assert warnings("oversized_frame") - before_big == 1

    # The stream carries on afterwards.
    assert len(converter.convert(make_frame(tone(1_000, 0.02, 48_000), pts=960))) == 960


def test_resampler_failure_is_absorbed_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    converter = InboundConverter()
    frames = list(frames_of(tone(1_000, 0.1, 48_000), 48_000))
    assert converter.convert(frames[0])

    class Broken:
        def __init__(self, rate: int) -> None:
            pass

        def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
            raise ValueError("Frame does not match AudioResampler setup.")

    before = warnings("convert_error")
    monkeypatch.setattr(inbound, "MonoResampler", Broken)
    converter.reset()
    assert converter.convert(frames[1]) == b""
    assert warnings("convert_error") - before == 1
    monkeypatch.undo()
    out = b"".join(converter.convert(f) for f in frames[2:]) + converter.flush()
    assert len(out) // 2 == 3 * 480


def test_warnings_are_logged_once_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    converter = InboundConverter()
    with caplog.at_level("WARNING", logger="translator_bot.audio.inbound"):
        for _ in range(5):
            converter.convert(None)  # type: ignore[arg-type]
    assert len(caplog.records) == 1


def test_converters_start_no_threads() -> None:
    # FFmpeg's default filter graph starts a worker pool per graph; one per track adds up, and creating
    # it costs milliseconds on the event loop.
    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    converters = [InboundConverter() for _ in range(8)]
    for converter in converters:
        converter.convert(make_frame(tone(1_000, 0.02, 48_000)))
    assert threads() == before


# ---- the cheap paths must be exact: the same bytes as converting every frame in full --------------


def speech_with_pauses(stereo_speech: np.ndarray, rate: int = 48_000) -> np.ndarray:
    """Speech, digital silence, speech, silence, speech: where a muted sender's frames skip the work."""
    speech = stereo_speech[: rate * 2].astype(np.float64) / 32768
    pause = np.zeros((rate, 2))
    short = np.zeros((rate // 100, 2))  # 10 ms: too short to prime the silence path
    return np.concatenate([pause[: rate // 2], speech, pause, speech, short, speech, pause])


def full_conversion(monkeypatch: pytest.MonkeyPatch, frames: list[av.AudioFrame]) -> tuple[bytes, int]:
    """The reference: every frame through the resampler, every pull until FFmpeg has nothing left
    (the conversion as it was before either shortcut). Returns the output and the frames resampled."""
    with monkeypatch.context() as patched:
        patched.setattr(inbound, "_is_digital_silence", lambda frame: False)
        patched.setattr(MonoResampler, "_pull_one", MonoResampler._pull)
        return run_counted(patched, frames)


def run_counted(patched: pytest.MonkeyPatch, frames: list[av.AudioFrame]) -> tuple[bytes, int]:
    calls = [0]
    original = MonoResampler.resample

    def counting(self: MonoResampler, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        calls[0] += frame is not None
        return original(self, frame)

    patched.setattr(MonoResampler, "resample", counting)
    converter = InboundConverter()
    out = b"".join(converter.convert(frame) for frame in frames) + converter.flush()
    return out, calls[0]


@pytest.mark.parametrize(
    ("rate", "fmt", "frame_ms"),
    [
        (48_000, "s16", 20),
        (48_000, "s16", 10),
        (48_000, "fltp", 20),
        (44_100, "s16", 20),
        (16_000, "s16", 20),
    ],
)
def test_silence_shortcut_is_byte_exact(
    monkeypatch: pytest.MonkeyPatch, stereo_speech: np.ndarray, rate: int, fmt: str, frame_ms: int
) -> None:
    signal = speech_with_pauses(stereo_speech)
    if rate != 48_000:
        signal = np.stack([soxr.resample(signal[:, c], 48_000, rate) for c in range(2)], axis=1)
    frames = list(frames_of(signal, rate, frame_ms=frame_ms, fmt=fmt))
    reference, resampled_all = full_conversion(monkeypatch, frames)
    with monkeypatch.context() as patched:
        out, resampled = run_counted(patched, frames)
    assert resampled_all == len(frames)
    # The shortcut was taken (for most of the 2.5 s of pauses), and changed not a single byte.
    pause_frames = 2.5 * 1000 / frame_ms
    assert resampled < len(frames) - 0.8 * pause_frames
    assert out == reference


def test_silence_shortcut_across_a_pts_gap_and_a_format_change(
    monkeypatch: pytest.MonkeyPatch, stereo_speech: np.ndarray
) -> None:
    signal = speech_with_pauses(stereo_speech)
    frames = list(frames_of(signal, 48_000))
    # 200 ms lost in a pause, then the stream goes on in another format.
    del frames[130:140]
    frames[170:] = [
        make_frame(signal[i * 960 : i * 960 + 960], fmt="flt", pts=i * 960)
        for i in range(170 + 10, len(frames) + 10)
    ]
    reference, _ = full_conversion(monkeypatch, frames)
    with monkeypatch.context() as patched:
        out, resampled = run_counted(patched, frames)
    assert resampled < len(frames)
    assert out == reference


def dtx_sender(stereo_speech: np.ndarray) -> list[av.AudioFrame]:
    """What a sender with Opus DTX gives the converter: speech, then in its pause one silent frame per
    ~400 ms (the keep-alives; the frames between were never sent), then speech again."""
    signal = speech_with_pauses(stereo_speech)[: 48_000 * 3]  # 0.5 s of silence, then 2 s of speech
    frames = list(frames_of(signal, 48_000))
    pts = len(signal)
    for _ in range(12):  # a 4.8 s pause of keep-alives, each a silent frame 400 ms after the last
        pts += 20 * 960
        frames.append(make_frame(np.zeros((960, 2)), pts=pts - 960))
    speech = stereo_speech[:48_000].astype(np.float64) / 32768
    frames += [make_frame(speech[i : i + 960], pts=pts + i) for i in range(0, len(speech), 960)]
    return frames


def count_graph_builds(patched: pytest.MonkeyPatch) -> list[int]:
    """From now on, every filter graph a MonoResampler builds adds one to the returned count."""
    built = [0]
    build = MonoResampler._build

    def counting_build(self: MonoResampler, frame: av.AudioFrame) -> av.filter.Graph:
        built[0] += 1
        return build(self, frame)

    patched.setattr(MonoResampler, "_build", counting_build)
    return built


def test_a_dtx_senders_keep_alives_reuse_the_silent_resampler(
    monkeypatch: pytest.MonkeyPatch, stereo_speech: np.ndarray
) -> None:
    """Each keep-alive comes after a gap. Once the resampler has only heard silence, its state and
    its held-back tail are zeros, which is what a fresh one and the flushed tail would give: it is kept
    across the gap, and building a filter graph per keep-alive (the costliest step of a DTX sender's
    audio) is saved, with the same bytes out as when every gap drains it."""
    frames = dtx_sender(stereo_speech)
    reference, _ = full_conversion(monkeypatch, frames)
    with monkeypatch.context() as patched:
        built = count_graph_builds(patched)
        out, _ = run_counted(patched, frames)
    assert out == reference
    assert built[0] == 1  # not one per keep-alive


def test_presumed_silence_keeps_the_silent_resampler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wall-clock silence of a sender gone quiet (idle_silence) keeps a silent resampler too."""
    built = count_graph_builds(monkeypatch)
    converter = InboundConverter()
    pts = 0
    for _pause in range(3):
        for _ in range(5):  # 100 ms of digital silence arriving on time
            converter.convert(make_frame(np.zeros((960, 2)), pts=pts), arrival=100.0 + pts / 48_000)
            pts += 960
        presumed = converter.idle_silence(100.0 + pts / 48_000 + 1.0)  # then a second without frames
        assert presumed and not any(presumed)
        pts += 48_000
    assert built[0] == 1


def test_near_silence_is_converted_not_zeroed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A faint click in an otherwise silent stretch (after the shortcut is primed) is sound: it must go
    # through the resampler, with the silence before it.
    quiet = np.zeros((48_000, 2))
    quiet[30_000:30_004, 0] = 0.01
    frames = list(frames_of(quiet, 48_000))
    reference, _ = full_conversion(monkeypatch, frames)
    with monkeypatch.context() as patched:
        out, _ = run_counted(patched, frames)
    assert out == reference
    assert any(out)


@pytest.mark.parametrize(
    ("rate", "channels", "fmt", "step"),
    [
        (48_000, 2, "s16", 960),
        (48_000, 6, "fltp", 480),
        (44_100, 2, "s16", 441),
        (8_000, 1, "flt", 160),
        (96_000, 2, "s16", 1_920),
        (24_000, 1, "s16", 480),
        (48_000, 2, "s16", 7),
        (48_000, 2, "s16", 5_000),
    ],
)
def test_resampler_yields_at_most_one_frame_per_frame_pushed(
    rate: int, channels: int, fmt: str, step: int
) -> None:
    # Pulling once per push relies on this; were it wrong, frames would pile up one push behind.
    signal = tone(700, 0.5, rate, channels=channels, amplitude=0.3)
    resampler = MonoResampler(24_000)
    for start in range(0, len(signal), step):
        frame = make_frame(signal[start : start + step], rate=rate, fmt=fmt, pts=start)
        resampler.resample(frame)
        assert resampler._pull() == []  # nothing was left behind by the single pull


# --- a sender that stops sending: silence presumed on the wall clock --------------------------------


def test_presumed_silence_starts_a_margin_after_the_sender_timeline_and_is_capped() -> None:
    args = {"next_start_s": 1.0, "lead_s": 0.0, "delay_s": 0.08, "margin_s": 0.3, "max_fill_s": 2.0}
    assert inbound.presumed_silence(now=1.08, **args) == 0.0  # the next frame is just due
    assert inbound.presumed_silence(now=1.38, **args) == 0.0  # late, within the margin (a loss stall)
    assert inbound.presumed_silence(now=1.48, **args) == pytest.approx(0.1)
    assert inbound.presumed_silence(now=1.48, **{**args, "lead_s": 0.04}) == pytest.approx(0.06)
    assert inbound.presumed_silence(now=60.0, **args) == 2.0  # gone for long: the cap, not a minute
    assert inbound.presumed_silence(now=60.0, **{**args, "lead_s": 2.0}) == 0.0


def tone_frame(n: int, *, loud: bool = True) -> av.AudioFrame:
    t = np.arange(960) + n * 960
    signal = np.sin(2 * np.pi * 440 * t / 48_000)[:, None] * (0.25 if loud else 0.0)
    return make_frame(signal, pts=n * 960)


def test_idle_silence_follows_the_wall_clock_and_a_later_gap_owes_only_the_rest() -> None:
    converter = InboundConverter(idle_margin_s=0.3, max_idle_fill_s=3.0)
    out = b"".join(converter.convert(tone_frame(n), arrival=0.1 + n * 0.02) for n in range(10))
    # Frames came as usual: nothing presumed.
    assert converter.idle_silence(0.1 + 10 * 0.02) == b""
    # Last frame ended at pts 0.2, arrived at 0.28 (delay 0.08): at 1.0 the sender is at ~0.92, so
    # 0.42 s of silence is presumed (plus the resampler's tail, flushed first).
    presumed = converter.idle_silence(1.0)
    tail = 2 * round(0.42 * 24_000)
    assert len(presumed) >= tail and presumed[-tail:] == bytes(tail)
    assert converter.idle_silence(1.0) == b""  # nothing twice
    # A stale frame (held by the sender's jitter buffer) still comes through, whole.
    late = converter.convert(tone_frame(10, loud=False), arrival=1.1)
    assert len(late) > 0
    # The next frame after a 0.5 s pts gap owes 0.5 - 0.42 s of silence only.
    resumed = converter.convert(tone_frame(36), arrival=1.2)
    assert abs(len(resumed) // 2 - round(0.08 * 24_000) - 480) <= 64, len(resumed) // 2
    assert len(out) > 0


def test_a_backward_jump_forgets_the_presumed_silence() -> None:
    converter = InboundConverter(idle_margin_s=0.3)
    for n in range(5):
        converter.convert(tone_frame(n), arrival=n * 0.02)
    assert converter.idle_silence(2.0)
    converter.convert(tone_frame(0), arrival=2.01)  # a new stream on the track: pts restart
    out = converter.convert(tone_frame(3), arrival=2.02)  # a 40 ms gap on the new timeline: all owed
    assert len(out) // 2 >= round(0.04 * 24_000)
    assert converter.idle_silence(2.03) == b""  # its delay is learnt anew, nothing presumed yet


def test_reset_keeps_the_learnt_delay_so_a_stale_first_frame_does_not_teach_it() -> None:
    converter = InboundConverter(idle_margin_s=0.3)
    for n in range(5):
        converter.convert(tone_frame(n), arrival=n * 0.02)  # delay ~0: frames as they come
    converter.reset()  # nobody needed the audio for a while
    # The first frame after it is an old one (jitter buffer, DTX): 1.5 s late.
    converter.convert(tone_frame(100), arrival=2.0 + 1.5)
    # Its sender is at ~3.5 s by now, so silence is presumed from its end (2.02 s) to 3.5 - 0.3 s.
    presumed = converter.idle_silence(3.5)
    assert abs(len(presumed) // 2 - round((3.2 - 2.02) * 24_000)) <= 600, len(presumed) // 2
