"""A simulated listener's recording plays a DTX pause out as silence, as WebRTC's NetEq does: its samples
stay on the sender's clock and its frame count keeps measuring how long the feed played."""

from __future__ import annotations

import fractions

import av
import numpy as np

from translator_bot.testbed.recording import Recording


def frame(pts: int | None, value: int = 100, samples: int = 960) -> av.AudioFrame:
    out = av.AudioFrame.from_ndarray(
        np.full((1, samples * 2), value, dtype=np.int16), format="s16", layout="stereo"
    )
    out.sample_rate = 48_000
    out.pts = pts
    out.time_base = fractions.Fraction(1, 48_000)
    return out


def test_a_timestamp_jump_is_filled_with_silence_of_its_length() -> None:
    rec = Recording()
    for pts in (0, 960, 20 * 960, 21 * 960):
        rec.add(frame(pts))
    assert rec.frames == 22 and rec.paused_frames == 18
    samples = rec.samples()
    assert samples.size == 22 * 960
    assert (samples[: 2 * 960] == 100).all() and not samples[2 * 960 : 20 * 960].any()
    assert (samples[20 * 960 :] == 100).all()
    assert rec.arrivals == sorted(rec.arrivals)


def test_contiguous_wrapping_and_restarted_timestamps_add_nothing() -> None:
    rec = Recording()
    top = 2**32 - 960
    for pts in (top - 960, top, 0, 960):  # the 32-bit RTP clock wraps
        rec.add(frame(pts))
    rec.add(frame(123_456_789))  # a new stream (re-published feed): not a pause
    rec.add(frame(123_456_789 - 960))  # reordered / older: nothing to fill
    rec.add(frame(None))
    assert rec.frames == 7 and rec.paused_frames == 0
