"""Where is someone speaking? One energy detector for every part that asks.

Audio is cut into fixed frames; a frame whose level reaches `threshold_dbfs` is voiced. A run of voiced
frames at least `min_speech_ms` long starts speech (a click or a single loud frame is not speech), and
`hangover_ms` of unvoiced frames after the last voiced one ends it, so a pause between words does not.
Positions are absolute sample indexes (`origin` + samples fed); events also give them in milliseconds.

Each user keeps its own tuning as a `VoiceActivityConfig`: the engine's input gate and the latency
tracker use 20 ms frames and react to a single voiced frame; the fake server's turn detection (and the
passthrough engine that imitates it) uses 10 ms frames, 30 ms of minimum speech and the Realtime API's
`server_vad` parameters, mapped by `ServerVadConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from translator_bot.audio.formats import MODEL_RATE

_FULL_SCALE = 32768.0
_POWER_FLOOR = 1e-12  # -120 dBFS: the level of digital silence, instead of log(0)
_NO_SAMPLES: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
_NO_SAMPLES.flags.writeable = False  # shared by every detector with nothing carried over


def amplitude_dbfs(rms: float) -> float:
    """Level in dBFS of an RMS amplitude on the int16 scale (300 -> about -40.8 dBFS)."""
    return 20.0 * math.log10(max(rms, 1e-9) / _FULL_SCALE)


def frame_levels(samples: npt.NDArray[np.int16], frame_samples: int) -> npt.NDArray[np.float32]:
    """RMS level in dBFS of each whole frame of `samples` (a trailing partial frame is left out)."""
    power = _frame_power(samples, frame_samples) / np.float32(_FULL_SCALE * _FULL_SCALE)
    levels: npt.NDArray[np.float32] = np.float32(10.0) * np.log10(power + np.float32(_POWER_FLOOR))
    return levels


def _frame_power(samples: npt.NDArray[np.int16], frame_samples: int) -> npt.NDArray[np.float32]:
    """Mean square of each whole frame on the int16 scale. float32 is ample for a level compared with a
    threshold and keeps the sentence splitter, which re-reads its unconsumed audio on every append, cheap;
    the detector compares this with its threshold as a power, with no logarithm per frame."""
    whole = len(samples) // frame_samples * frame_samples
    frames = samples[:whole].astype(np.float32).reshape(-1, frame_samples)
    # The sum over the count is what np.mean computes (the same float32 pairwise sum), without its
    # argument handling, which cost more than the arithmetic on a 20 ms frame.
    power: npt.NDArray[np.float32] = (frames * frames).sum(axis=1) / np.float32(frame_samples)
    return power


def _min_power(threshold_dbfs: float) -> float:
    """The frame power at `threshold_dbfs`, rounded to float32 as numpy rounds a Python float compared
    with a float32 array: a frame power (a float32 value) compared with it as Python floats then gives
    exactly the verdict the array comparison gives."""
    return float(np.float32(_FULL_SCALE * _FULL_SCALE * 10.0 ** (threshold_dbfs / 10.0)))


class SharedChunk:
    """One chunk of pcm16 audio that several detectors read (a speaker's tracker and each of its lanes'
    gates), with the power of its frames computed once for all of them.

    A detector's frames are its carried-over samples followed by the chunk's, so what the frames are
    depends on what it carries: the powers are kept per frame size and carry, and a detector that
    carries the same samples as one before it reuses that one's powers, exactly what it would have
    computed. Detectors fed the same audio from the same point on carry the same samples (the lanes of
    a speaker, the tracker with the lanes opened along with it); one that opened elsewhere on the frame
    grid computes the powers once for its phase, and any other on that phase reuses them."""

    __slots__ = ("_powers", "pcm", "samples")

    def __init__(self, pcm: bytes) -> None:
        """`pcm`: little-endian int16 (an even number of bytes); never changes, as bytes cannot."""
        self.pcm = pcm
        self.samples: npt.NDArray[np.int16] = np.frombuffer(pcm, dtype="<i2")
        self._powers: dict[tuple[int, bytes], list[float]] = {}

    @classmethod
    def of(cls, pcm: bytes) -> SharedChunk | None:
        """The chunk to share, or None if `pcm` cannot be read as whole samples on its own."""
        return cls(pcm) if type(pcm) is bytes and not len(pcm) % 2 else None

    def frame_powers(self, carry: npt.NDArray[np.int16], frame_samples: int) -> list[float]:
        """Power of each whole frame of `carry` followed by the chunk (Python floats of float32 values)."""
        # Keyed by the carried values (as little-endian bytes, whatever the machine's byte order).
        carried = carry.astype("<i2", copy=False).tobytes()
        key = (frame_samples, carried)
        powers = self._powers.get(key)
        if powers is None:
            frames = (len(carry) + len(self.samples)) // frame_samples
            if _all_zero(self.pcm) and _all_zero(carried):
                # Digital silence (a muted microphone, a pause of the test participants): every power
                # is 0.0, as computing them gives, for a memcmp instead of the arithmetic.
                powers = [0.0] * frames
            else:
                data = self.samples if not len(carry) else np.concatenate([carry, self.samples])
                powers = _frame_power(data[: frames * frame_samples], frame_samples).tolist()
            self._powers[key] = powers
        return powers


_zero_cache: dict[int, bytes] = {}


def _all_zero(data: bytes) -> bool:
    """Every byte zero: compared with a kept run of zeros (a memcmp that stops at the first sound)."""
    zeros = _zero_cache.get(len(data))
    if zeros is None:
        if len(_zero_cache) > 64:  # chunks of many sizes: stay bounded
            _zero_cache.clear()
        zeros = _zero_cache[len(data)] = bytes(len(data))
    return data == zeros


@dataclass(frozen=True)
class VoiceActivityConfig:
    threshold_dbfs: float = -40.0  # a frame at or above this level is voiced
    frame_ms: int = 10
    min_speech_ms: int = 30  # voiced run needed to start speech (one frame when <= frame_ms)
    hangover_ms: int = 500  # unvoiced audio after the last voiced frame that ends speech
    prefix_padding_ms: int = 0  # reported start of speech: this much before its first voiced frame

    def __post_init__(self) -> None:
        if self.frame_ms <= 0:
            raise ValueError("frame_ms must be positive")


@dataclass(frozen=True)
class ServerVadConfig:
    """The Realtime API's `server_vad` parameters, as the fake server (and the passthrough engine)
    detect turns with them.

    The real service runs a neural VAD whose `threshold` is a speech probability in 0..1. Here that
    probability maps onto a frame level (0.5 -> -40 dBFS, each 0.1 -> 4 dB), which is enough to find
    where recorded utterances start and stop and behaves like the real thing on what matters to a
    client: silence never starts a turn, a pause shorter than `silence_duration_ms` does not end one, and
    the start includes `prefix_padding_ms` of audio before the first voiced frame.
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    def detector(self) -> VoiceActivityConfig:
        return VoiceActivityConfig(
            threshold_dbfs=server_vad_level_dbfs(self.threshold),
            frame_ms=10,
            min_speech_ms=30,
            hangover_ms=self.silence_duration_ms,
            prefix_padding_ms=self.prefix_padding_ms,
        )


def server_vad_level_dbfs(threshold: float) -> float:
    """Frame level (dBFS) that counts as voiced for a `server_vad` `threshold` in 0..1."""
    clamped = min(max(threshold, 0.0), 1.0)
    return -60.0 + 40.0 * clamped


@dataclass(frozen=True)
class VoiceStarted:
    start: int  # prefix padding included, never before the detector's origin
    voiced: int  # where the first voiced frame began
    rate: int = MODEL_RATE

    @property
    def start_ms(self) -> int:
        return self.start * 1000 // self.rate

    @property
    def voiced_ms(self) -> int:
        return self.voiced * 1000 // self.rate


@dataclass(frozen=True)
class VoiceStopped:
    end: int  # just after the last voiced frame
    rate: int = MODEL_RATE

    @property
    def end_ms(self) -> int:
        return self.end * 1000 // self.rate


VoiceEvent = VoiceStarted | VoiceStopped


class VoiceActivityDetector:
    """Feed mono int16 audio in chunks of any size; get start/stop events in stream order."""

    def __init__(
        self,
        config: VoiceActivityConfig,
        *,
        origin: int = 0,
        rate: int = MODEL_RATE,
        sound_floor_dbfs: float | None = None,
    ) -> None:
        """`sound_floor_dbfs`: also track where the last frame at or above this (lower) level ended
        (`last_sound_end`), from the same per-frame power, for callers that need "any sound at all"."""
        self._config = config
        self._min_power = _min_power(config.threshold_dbfs)
        self._sound_power = None if sound_floor_dbfs is None else _min_power(sound_floor_dbfs)
        self._last_sound_end: int | None = None  # frame index just after the last frame above the floor
        self._rate = rate
        self._frame = rate * config.frame_ms // 1000
        self._origin = origin  # where the first sample fed sits on the caller's sample clock
        self._carry = _NO_SAMPLES
        self._frames = 0  # whole frames examined
        self._in_speech = False
        self._run_start: int | None = None  # first frame of the voiced run not yet long enough
        self._run_frames = 0
        self._last_voiced_end: int | None = None  # frame index just after the last voiced frame

    @property
    def config(self) -> VoiceActivityConfig:
        return self._config

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position(self) -> int:
        """Sample just after the last whole frame examined."""
        return self._at(self._frames)

    @property
    def position_ms(self) -> int:
        return self.position * 1000 // self._rate

    @property
    def received(self) -> int:
        """Sample just after the last one fed (a partial frame waits for the next feed)."""
        return self.position + len(self._carry)

    @property
    def last_voiced_end(self) -> int | None:
        """Sample just after the last voiced frame so far, None before any."""
        return None if self._last_voiced_end is None else self._at(self._last_voiced_end)

    @property
    def last_sound_end(self) -> int | None:
        """Sample just after the last frame at or above the sound floor, None before any (or no floor)."""
        return None if self._last_sound_end is None else self._at(self._last_sound_end)

    def reconfigure(self, config: VoiceActivityConfig) -> None:
        """New thresholds and durations; the sample clock and speech in progress carry on."""
        if config.frame_ms != self._config.frame_ms:
            raise ValueError("the frame size of a running detector cannot change")
        self._config = config
        self._min_power = _min_power(config.threshold_dbfs)

    def feed(self, samples: npt.NDArray[np.int16]) -> list[VoiceEvent]:
        data = samples if not len(self._carry) else np.concatenate([self._carry, samples])
        whole = len(data) // self._frame * self._frame
        # A copy (the caller's buffer may change); none for the usual chunk of whole frames.
        self._carry = data[whole:].astype(np.int16) if whole < len(data) else _NO_SAMPLES
        if not whole:
            return []
        return self._examine(_frame_power(data[:whole], self._frame).tolist())

    def feed_shared(self, chunk: SharedChunk) -> list[VoiceEvent]:
        """`feed(chunk.samples)`, with the frame powers other detectors already computed when they
        are this detector's frames too (the same events, positions and state either way)."""
        carry, samples = self._carry, chunk.samples
        power = chunk.frame_powers(carry, self._frame)
        tail = (len(carry) + len(samples)) % self._frame
        if not tail:
            self._carry = _NO_SAMPLES
        elif tail <= len(samples):
            # A view, not a copy: the chunk's bytes are immutable.
            self._carry = samples[len(samples) - tail :]
        else:  # a chunk shorter than what the carry lacks: everything is carried on
            self._carry = np.concatenate([carry, samples])
        return self._examine(power)

    def _examine(self, power: list[float]) -> list[VoiceEvent]:
        """The next whole frames, by their power. Python floats: a 20 ms chunk is one frame, for which
        numpy's per-call overhead costs more than the comparisons themselves."""
        sound = self._sound_power
        if sound is not None:
            for index in range(len(power) - 1, -1, -1):
                if power[index] >= sound:
                    self._last_sound_end = self._frames + index + 1
                    break
        events: list[VoiceEvent] = []
        min_power = self._min_power
        for frame_power in power:
            event = self._step(frame_power >= min_power)
            if event is not None:
                events.append(event)
        return events

    def reset(self) -> None:
        """Forget speech in progress without an event (the audio it was in was thrown away)."""
        self._in_speech = False
        self._run_start, self._run_frames = None, 0

    def flush(self) -> list[VoiceEvent]:
        """End of input: speech still going on ends at its last voiced frame."""
        if not self._in_speech or self._last_voiced_end is None:
            return []
        self.reset()
        return [VoiceStopped(self._at(self._last_voiced_end), self._rate)]

    def _at(self, frame: int) -> int:
        return self._origin + frame * self._frame

    def _step(self, voiced: bool) -> VoiceEvent | None:
        config = self._config
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
            if self._run_frames * config.frame_ms < config.min_speech_ms:
                return None
            self._in_speech = True
            voiced_at = self._at(self._run_start)
            padding = config.prefix_padding_ms * self._rate // 1000
            return VoiceStarted(max(self._origin, voiced_at - padding), voiced_at, self._rate)
        assert self._last_voiced_end is not None  # speech started on a voiced frame
        silent_ms = (self._frames - self._last_voiced_end) * config.frame_ms
        if silent_ms >= config.hangover_ms:
            self.reset()
            return VoiceStopped(self._at(self._last_voiced_end), self._rate)
        return None
