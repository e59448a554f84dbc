"""One playout item's model audio (24 kHz mono pcm16 bytes, in chunks of any length) as 48 kHz mono.

The upsampling is done once per chunk as it is queued, with one stateful resampler per item: its
filter carries over from chunk to chunk, so chunk boundaries leave no trace; the item's end flushes
the 1.3 ms the filter holds back; a cut item's resampler is simply dropped with it, so none of its
tail leaks into the next item.

Chunks need not hold whole samples: a chunk of odd length leaves its last byte to be joined with the
first byte of the next chunk.
"""

from __future__ import annotations

import av
import numpy as np

from translator_bot.audio.formats import MODEL_RATE, ROOM_RATE
from translator_bot.audio.pcm import Int16Array, MonoResampler, pcm16_to_array

OUT_RATE = ROOM_RATE
UPSAMPLE = OUT_RATE // MODEL_RATE  # output samples per model sample


class ItemUpsampler:
    """The byte stream of one item -> 48 kHz mono samples. Not thread-safe."""

    def __init__(self) -> None:
        self.carry = b""  # the first byte of a sample split across two chunks
        self._resampler: MonoResampler | None = None

    def whole_samples(self, pcm: bytes | bytearray | memoryview) -> Int16Array:
        """The whole samples of the carried byte + `pcm` (maybe none); an odd byte is carried on."""
        data = self.carry + bytes(pcm) if self.carry else bytes(pcm)
        if len(data) % 2:
            self.carry = data[-1:]
            data = data[:-1]
        else:
            self.carry = b""
        return pcm16_to_array(data) if data else np.zeros(0, dtype=np.int16)

    def skip(self, pcm: bytes | bytearray | memoryview, size: int) -> None:
        """`pcm` (`size` bytes) is dropped unplayed: keep the sample alignment of the chunks after it."""
        self.carry = bytes(pcm)[-1:] if (len(self.carry) + size) % 2 else b""

    def upsample(self, samples: Int16Array) -> Int16Array:
        """24 -> 48 kHz. On failure the filter is started afresh for the next chunk (a broken filter
        state would fail every later chunk too) and the error is raised."""
        if self._resampler is None:
            self._resampler = MonoResampler(OUT_RATE)
        try:
            return _resample(self._resampler, samples)
        except Exception:
            self._resampler = None
            raise

    def flush(self) -> Int16Array:
        """The item has ended: the tail the filter held back. Drops a half sample still carried."""
        self.carry = b""
        resampler, self._resampler = self._resampler, None
        if resampler is None:
            return np.zeros(0, dtype=np.int16)
        return _resample(resampler, None)


def _resample(resampler: MonoResampler, samples: Int16Array | None) -> Int16Array:
    """24 -> 48 kHz through the item's stateful resampler; None flushes its tail."""
    if samples is None:
        converted = resampler.resample(None)
    else:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = MODEL_RATE
        converted = resampler.resample(frame)
    if not converted:
        return np.zeros(0, dtype=np.int16)
    parts = [np.asarray(f.to_ndarray(), dtype=np.int16).reshape(-1) for f in converted]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
