"""The input audio of one lane: a bounded history with absolute sample positions, and a speech gate.

Audio is written once (`push`) and read by whichever socket is current (`take`). Keeping the recent
past, instead of a queue that forgets what was sent, is what lets a new socket hear an utterance
again from its start after a drop, or pick up mid-speech at a recycle, without anything lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from translator_bot.audio.formats import BYTES_PER_SAMPLE, MODEL_RATE
from translator_bot.audio.vad import (
    SharedChunk,
    VoiceActivityConfig,
    VoiceActivityDetector,
    VoiceEvent,
    VoiceStarted,
    amplitude_dbfs,
)
from translator_bot.engine.silence_gate import SILENCE_FLOOR_DBFS

log = logging.getLogger(__name__)

# The gate decides per 20 ms block: one block at RMS 300 (about -40.8 dBFS: above room noise, below any
# voice close to a microphone) starts a run of speech, 500 ms of quiet ends it.
_GATE = VoiceActivityConfig(
    threshold_dbfs=amplitude_dbfs(300.0), frame_ms=20, min_speech_ms=20, hangover_ms=500
)


def samples_to_ms(samples: int) -> int:
    """Whole milliseconds contained in `samples` (rounded down, so never more than there is)."""
    return samples * 1000 // MODEL_RATE


class AudioFeed:
    """Bounded history of the lane's input; positions are absolute sample indexes since the lane began."""

    def __init__(
        self, max_seconds: float = 20.0, *, on_speech_start: Callable[[], None] | None = None
    ) -> None:
        self._max_samples = int(max_seconds * MODEL_RATE)
        self._buf = bytearray()
        self._start = 0  # absolute index of the first sample in _buf
        self._carry = b""  # odd trailing byte of the last push
        self.sent_upto = 0  # absolute index of the next sample to hand to a socket
        self.dropped_samples = 0  # never sent because the history overflowed while nobody read it
        # The gate also tracks any sound at all (a 20 ms block at or above the silence gate's floor,
        # `engine.silence_gate`) from the same per-frame power.
        self._gate = VoiceActivityDetector(_GATE, sound_floor_dbfs=SILENCE_FLOOR_DBFS)
        self.run_start: int | None = None  # start of the current or last run of speech
        self._on_speech_start = on_speech_start

    @property
    def voiced(self) -> bool:
        """Speech is going on (or paused for less than the gate's hangover)."""
        return self._gate.in_speech

    @property
    def run_end(self) -> int | None:
        """End of the last voiced block of the current or last run of speech."""
        return self._gate.last_voiced_end

    @property
    def end(self) -> int:
        return self._start + len(self._buf) // BYTES_PER_SAMPLE

    @property
    def start(self) -> int:
        return self._start

    def push(self, pcm: bytes, shared: SharedChunk | None = None) -> None:
        """`shared`: `pcm` as other detectors of the same audio read it (`audio.vad.SharedChunk`), whose
        frame powers the gate reuses when they are its own."""
        if self._carry or len(pcm) % BYTES_PER_SAMPLE:
            data = self._carry + pcm
            if len(data) % BYTES_PER_SAMPLE:
                self._carry, data = data[-1:], data[:-1]
            else:
                self._carry = b""
            shared = None  # the samples do not begin at `pcm`'s first byte
        else:
            data = pcm
        self._buf += data
        if shared is not None and shared.pcm is data:  # the very same bytes, so the same samples
            events = self._gate.feed_shared(shared)
        else:
            events = self._gate.feed(np.frombuffer(data, dtype="<i2"))
        self._gate_events(events)
        excess = len(self._buf) // BYTES_PER_SAMPLE - self._max_samples
        if excess > 0:
            del self._buf[: excess * BYTES_PER_SAMPLE]
            self._start += excess
            if self.sent_upto < self._start:
                self.dropped_samples += self._start - self.sent_upto
                self.sent_upto = self._start

    def available(self) -> int:
        """Samples pushed but not yet handed to a socket."""
        return self.end - self.sent_upto

    def take(self, max_samples: int) -> bytes:
        count = min(max_samples, self.available())
        offset = (self.sent_upto - self._start) * BYTES_PER_SAMPLE
        chunk = bytes(self._buf[offset : offset + count * BYTES_PER_SAMPLE])
        self.sent_upto += count
        return chunk

    def seek(self, position: int) -> int:
        """Hand audio from `position` on (clamped to what is kept): back to hear it again, or ahead to
        skip a backlog nobody was sent (counted as dropped). Returns where reading resumes."""
        position = max(self._start, min(self.end, position))
        if position > self.sent_upto:
            self.dropped_samples += position - self.sent_upto
        self.sent_upto = position
        return position

    def skip_to(self, position: int) -> None:
        """Hand nothing before `position` (clamped to what is kept) to a socket: silence the lane
        chose not to send, which is not counted as dropped."""
        self.sent_upto = max(self.sent_upto, min(self.end, position))

    @property
    def quiet_since(self) -> int:
        """Where the silence at the end of the history began: just after the last block with any
        sound (at or above the silence gate's floor); 0 when there has been none."""
        return self._gate.last_sound_end or 0

    def recent_speech_start(self, within_samples: int, pad_samples: int) -> int | None:
        """Start (minus padding) of speech that is going on or ended within `within_samples` of now."""
        if self.run_start is None:
            return None
        if not self.voiced and (self.run_end is None or self.end - self.run_end > within_samples):
            return None
        return max(self._start, self.run_start - pad_samples)

    def quiet_for(self) -> int:
        """Samples of continuous quiet at the end of the history."""
        if self.voiced:
            return 0
        if self.run_end is None:
            return self.end - self._start
        return self.end - self.run_end

    def _gate_events(self, events: list[VoiceEvent]) -> None:
        for event in events:
            if isinstance(event, VoiceStarted):
                self.run_start = event.voiced
                if self._on_speech_start is not None:
                    self._on_speech_start()
