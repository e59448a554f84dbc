"""When did the speaker stop talking? The energy detector on the audio we send to the model.

Only used to measure latency (speech end -> first translated audio); the model's own turn detection
decides what is translated.

Every lane of a speaker hears the same audio, so the meeting runs one tracker per speaker and gives each
lane a view of it from the moment the lane opened (`since_now`): what a tracker of the lane's own, fed
the same chunks from then on, would say (the chunks are whole 20 ms frames, so frames line up). The
tracker also hands each chunk on as a `SharedChunk`, so each lane's input gate reuses the frame powers
it computed instead of computing them again (the gate's frames are the tracker's when the lane opened
on the tracker's frame grid; see `SharedChunk`).
"""

from __future__ import annotations

import numpy as np

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import SharedChunk, VoiceActivityConfig, VoiceActivityDetector, VoiceStopped

_FRAME_MS = 20


class SpeechEndTracker:
    def __init__(self, *, threshold_dbfs: float = -40.0, hangover_ms: int = 200) -> None:
        hangover_frames = max(1, hangover_ms // _FRAME_MS)
        self._detector = VoiceActivityDetector(
            VoiceActivityConfig(
                threshold_dbfs=threshold_dbfs,
                frame_ms=_FRAME_MS,
                min_speech_ms=_FRAME_MS,
                hangover_ms=hangover_frames * _FRAME_MS,
            )
        )
        self._carry = b""  # odd trailing byte of the last chunk
        self._last_voiced_at: float | None = None
        self.last_speech_end: float | None = None  # clock time of the last voiced frame of a finished run
        self.last_speech_end_sample: int | None = None  # the same end as a position in the audio fed

    def feed(self, pcm: bytes, now: float) -> SharedChunk | None:
        """`now` is the clock time at which the END of `pcm` was captured. Returns `pcm` as a chunk
        other detectors of the same audio can share the frame powers of (None if it is not bytes of
        whole samples: they read it on their own)."""
        detector = self._detector
        chunk = SharedChunk.of(pcm)
        if self._carry or chunk is None:
            data = self._carry + pcm
            usable = len(data) - len(data) % 2
            self._carry = data[usable:]
            samples = np.frombuffer(data, dtype="<i2", count=usable // 2)
            examined = detector.position
            events = detector.feed(samples)
        else:  # the usual chunk of whole samples: read in place, not copied
            examined = detector.position
            events = detector.feed_shared(chunk)
        received = detector.received
        for event in events:
            if isinstance(event, VoiceStopped):
                # A voiced frame of an earlier chunk was captured at that chunk's clock time.
                ended = event.end > examined
                self.last_speech_end = (
                    now - (received - event.end) / MODEL_RATE if ended else self._last_voiced_at
                )
                self.last_speech_end_sample = event.end
        last_voiced = detector.last_voiced_end
        if last_voiced is not None and last_voiced > examined:
            self._last_voiced_at = now - (received - last_voiced) / MODEL_RATE
        return chunk

    @property
    def speaking(self) -> bool:
        return self._detector.in_speech

    @property
    def last_voiced_sample(self) -> int | None:
        """Position just after the last voiced frame fed, None before any."""
        return self._detector.last_voiced_end

    def since_now(self) -> SpeechSince:
        """A view of this tracker that sees only the audio fed from now on."""
        return SpeechSince(self, self._detector.received)


class SpeechSince:
    """A tracker's speech end and state, as if it had been started at sample `since`: a run that ended
    before then, or one whose voiced frames all came before it, is not seen."""

    def __init__(self, tracker: SpeechEndTracker, since: int) -> None:
        self._tracker = tracker
        self._since = since

    @property
    def last_speech_end(self) -> float | None:
        end = self._tracker.last_speech_end_sample
        return self._tracker.last_speech_end if end is not None and end > self._since else None

    @property
    def speaking(self) -> bool:
        voiced = self._tracker.last_voiced_sample
        return self._tracker.speaking and voiced is not None and voiced > self._since
