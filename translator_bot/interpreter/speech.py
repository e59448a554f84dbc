"""When did the speaker stop talking? A small energy detector on the audio we send to the model.

Only used to measure latency (speech end -> first translated audio); the model's own turn detection
decides what is translated.
"""

from __future__ import annotations

import numpy as np

_FRAME_SAMPLES = 480  # 20 ms at 24 kHz


class SpeechEndTracker:
    def __init__(self, *, threshold_dbfs: float = -40.0, hangover_ms: int = 200) -> None:
        self._threshold = float(32768.0 * 10 ** (threshold_dbfs / 20))
        self._hangover_frames = max(1, hangover_ms // 20)
        self._carry = np.zeros(0, dtype=np.int16)
        self._quiet_frames = 0
        self._in_speech = False
        self._last_voiced_at: float | None = None
        self.last_speech_end: float | None = None  # clock time of the last voiced frame of a finished run

    def feed(self, pcm: bytes, now: float) -> None:
        """`now` is the clock time at which the END of `pcm` was captured."""
        usable = len(pcm) - len(pcm) % 2
        samples = np.concatenate([self._carry, np.frombuffer(pcm[:usable], dtype="<i2")])
        frames = len(samples) // _FRAME_SAMPLES
        for index in range(frames):
            frame = samples[index * _FRAME_SAMPLES : (index + 1) * _FRAME_SAMPLES].astype(np.float32)
            frame_end = now - (len(samples) - (index + 1) * _FRAME_SAMPLES) / 24_000
            rms = float(np.sqrt(np.mean(frame * frame)))
            if rms >= self._threshold:
                self._in_speech = True
                self._quiet_frames = 0
                self._last_voiced_at = frame_end
            elif self._in_speech:
                self._quiet_frames += 1
                if self._quiet_frames >= self._hangover_frames:
                    self._in_speech = False
                    self.last_speech_end = self._last_voiced_at
        self._carry = samples[frames * _FRAME_SAMPLES :].copy()

    @property
    def speaking(self) -> bool:
        return self._in_speech
