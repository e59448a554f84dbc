"""Energy-based voice activity detection on the audio the fake really receives.

The real service runs a neural VAD whose `threshold` is a speech probability in 0..1. The fake maps
that probability onto a frame-energy level (0.5 -> -40 dBFS, each 0.1 -> 4 dB), which is enough to
find where recorded utterances start and stop, and behaves like the real thing on what matters to a
client: silence never starts a turn, a pause shorter than `silence_duration_ms` does not end one,
and `audio_start_ms` includes `prefix_padding_ms` of audio before the first voiced frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from translator_bot.audio.formats import MODEL_RATE

FRAME_MS = 10
_FRAME = MODEL_RATE * FRAME_MS // 1000
_MIN_SPEECH_MS = 30  # a click or a single loud frame is not speech


def threshold_dbfs(threshold: float) -> float:
    """Frame RMS level (dBFS) that counts as voiced for a VAD `threshold` in 0..1."""
    clamped = min(max(threshold, 0.0), 1.0)
    return -60.0 + 40.0 * clamped


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int  # prefix padding included, never before the start of the audio
    voiced_ms: int  # where the first voiced frame began


@dataclass(frozen=True)
class SpeechStopped:
    audio_end_ms: int  # end of the last voiced frame


VadEvent = SpeechStarted | SpeechStopped


class EnergyVad:
    """Feed 24 kHz mono int16 audio in chunks of any size; get start/stop events in stream order.

    Positions are milliseconds since the first sample fed (the session's audio clock).
    """

    def __init__(self, config: VadConfig | None = None, *, origin_ms: int = 0) -> None:
        self._config = config or VadConfig()
        self._origin_ms = origin_ms  # where this VAD's first sample sits on the session's audio clock
        self._level = threshold_dbfs(self._config.threshold)
        self._carry = np.zeros(0, dtype=np.int16)
        self._frames = 0  # 10 ms frames consumed
        self._in_speech = False
        self._run_start: int | None = None  # first frame of the current voiced run (before start)
        self._run_frames = 0
        self._last_voiced_end = 0  # frame index just after the last voiced frame

    @property
    def config(self) -> VadConfig:
        return self._config

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position_ms(self) -> int:
        return self._origin_ms + self._frames * FRAME_MS

    def reconfigure(self, config: VadConfig) -> None:
        """New parameters from a `session.update`; the audio clock and a turn in progress carry on."""
        self._config = config
        self._level = threshold_dbfs(config.threshold)

    def feed(self, samples: npt.NDArray[np.int16]) -> list[VadEvent]:
        data = np.concatenate([self._carry, samples.astype(np.int16, copy=False)])
        whole = len(data) // _FRAME * _FRAME
        self._carry = data[whole:].copy()
        if whole == 0:
            return []
        frames = data[:whole].astype(np.float32).reshape(-1, _FRAME) / 32768.0
        levels = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
        events: list[VadEvent] = []
        for level in levels:
            event = self._step(bool(level > self._level))
            if event is not None:
                events.append(event)
        return events

    def reset(self) -> None:
        """Forget a turn in progress without an event (the input buffer was cleared)."""
        self._in_speech = False
        self._run_start, self._run_frames = None, 0

    def _ms(self, frame: int) -> int:
        return self._origin_ms + frame * FRAME_MS

    def flush(self) -> list[VadEvent]:
        """End of input: a turn still open ends at its last voiced frame."""
        if not self._in_speech:
            return []
        self._in_speech = False
        self._run_start = None
        self._run_frames = 0
        return [SpeechStopped(audio_end_ms=self._ms(self._last_voiced_end))]

    def _step(self, voiced: bool) -> VadEvent | None:
        index = self._frames
        self._frames += 1
        if voiced:
            self._last_voiced_end = index + 1
        if not self._in_speech:
            if not voiced:
                self._run_start, self._run_frames = None, 0
                return None
            if self._run_start is None:
                self._run_start = index
            self._run_frames += 1
            if self._run_frames * FRAME_MS < _MIN_SPEECH_MS:
                return None
            self._in_speech = True
            voiced_ms = self._ms(self._run_start)
            start = max(self._origin_ms, voiced_ms - self._config.prefix_padding_ms)
            return SpeechStarted(audio_start_ms=start, voiced_ms=voiced_ms)
        silent_ms = (self._frames - self._last_voiced_end) * FRAME_MS
        if silent_ms >= self._config.silence_duration_ms:
            self._in_speech = False
            self._run_start, self._run_frames = None, 0
            return SpeechStopped(audio_end_ms=self._ms(self._last_voiced_end))
        return None
