"""PCM constants, conversions and the stateful resampler shared by the inbound and outbound paths."""

from __future__ import annotations

import errno

import av
import av.filter
import numpy as np
import numpy.typing as npt

FRAME_MS = 20

Int16Array = npt.NDArray[np.int16]


def samples_per_frame(rate: int, frame_ms: int = FRAME_MS) -> int:
    return rate * frame_ms // 1000


def ms_to_samples(ms: float, rate: int) -> int:
    return round(ms * rate / 1000)


def samples_to_ms(samples: int, rate: int) -> float:
    return samples * 1000 / rate


def pcm16_to_array(data: bytes | bytearray | memoryview) -> Int16Array:
    """Little-endian pcm16 bytes (even length) as a native int16 array (a copy: safe to keep)."""
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def array_to_pcm16(samples: npt.NDArray[np.integer]) -> bytes:
    """int16 samples as little-endian pcm16 bytes, whatever the host byte order."""
    return np.asarray(samples).astype("<i2", copy=False).tobytes()


# A 64-tap filter with its cutoff just under the lower Nyquist frequency: FFmpeg's default filter folds
# 12-13 kHz content back into 11-12 kHz at -13 dB when going down to 24 kHz (and leaves images there
# when going up); this removes that for a few microseconds per 20 ms frame.
_FILTER_OPTIONS = {"filter_size": "64", "cutoff": "0.95"}


class MonoResampler:
    """Stateful conversion of one stream of audio frames to s16 mono at `rate`.

    The same conversion as `av.AudioResampler(format="s16", layout="mono", rate=...)`, on a filter graph
    limited to one thread: FFmpeg's default gives every graph a pool of worker threads (one per core),
    which costs 0.3-8 ms to create on a busy machine, on the event loop, for every track and item.
    Like PyAV's resampler it rejects a frame whose format, layout or rate differs from the first one
    (ValueError); flushing with `resample(None)` ends the stream.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._graph: av.filter.Graph | None = None
        self._input: tuple[str, str, int] | None = None

    def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        if frame is None:
            if self._graph is None:
                return []
            self._graph.push(None)
            return self._pull()
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._graph is None:
            self._graph = self._build(frame)
            self._input = key
        elif key != self._input:
            raise ValueError(f"frame format {key} differs from the stream's {self._input}")
        self._graph.push(frame)
        return self._pull_one()

    def _build(self, frame: av.AudioFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        graph.threads = 1
        time_base = frame.time_base
        source = graph.add(
            "abuffer",
            sample_rate=str(frame.sample_rate),
            sample_fmt=frame.format.name,
            channel_layout=frame.layout.name,
            time_base=str(time_base) if time_base is not None else f"1/{frame.sample_rate}",
        )
        resample = graph.add("aresample", **_FILTER_OPTIONS)
        convert = graph.add("aformat", sample_rates=str(self.rate), sample_fmts="s16", channel_layouts="mono")
        sink = graph.add("abuffersink")
        source.link_to(resample)
        resample.link_to(convert)
        convert.link_to(sink)
        graph.configure()
        return graph

    def _pull_one(self) -> list[av.AudioFrame]:
        """The frame a pushed frame produced, if any. The chain (aresample, then aformat) turns each
        input frame into at most one output frame, so a second pull would only raise EAGAIN, and an
        FFmpeg error costs 4 us to raise, a fifth of the whole conversion of a 20 ms frame."""
        assert self._graph is not None
        try:
            pulled = self._graph.pull()
        except EOFError:
            return []
        except av.FFmpegError as exc:
            if exc.errno != errno.EAGAIN:
                raise
            return []
        return [pulled] if isinstance(pulled, av.AudioFrame) else []

    def _pull(self) -> list[av.AudioFrame]:
        graph = self._graph
        out: list[av.AudioFrame] = []
        while graph is not None:
            try:
                pulled = graph.pull()
            except EOFError:
                break
            except av.FFmpegError as exc:
                if exc.errno != errno.EAGAIN:
                    raise
                break
            if isinstance(pulled, av.AudioFrame):
                out.append(pulled)
        return out
