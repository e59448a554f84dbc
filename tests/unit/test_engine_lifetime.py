"""Backoff, error classification and the input history that makes replay after a drop possible."""

from __future__ import annotations

import numpy as np
import pytest

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.pcm import ms_to_samples as pcm_ms_to_samples
from translator_bot.engine.feed import AudioFeed, samples_to_ms
from translator_bot.engine.lifetime import Backoff, RetryableError, error_for_status, is_fatal, is_retryable
from translator_bot.errors import ProviderFatalError


def test_backoff_doubles_to_eight_seconds_with_jitter() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(7)]
    for got, base in zip(delays, [0.5, 1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.75 <= got <= base * 1.25
    backoff.reset()
    assert backoff.next_delay() <= 0.625


@pytest.mark.parametrize(
    ("status", "fatal"), [(401, True), (403, True), (404, True), (429, False), (500, False)]
)
def test_handshake_status(status: int, fatal: bool) -> None:
    error = error_for_status(status, "host/v1/realtime")
    assert isinstance(error, ProviderFatalError if fatal else RetryableError)


def test_error_classes() -> None:
    assert is_fatal("invalid_request_error", "invalid_api_key")
    assert is_fatal("insufficient_quota", None)
    assert not is_fatal("invalid_request_error", "session_expired")
    assert is_retryable("server_error", None) and is_retryable("requests", "rate_limit_exceeded")
    assert not is_fatal("server_error", None)


def ms_to_samples(ms: int) -> int:
    return pcm_ms_to_samples(ms, MODEL_RATE)


def tone(ms: int) -> bytes:
    t = np.arange(ms * 24) / 24000
    return (6000 * np.sin(2 * np.pi * 200 * t)).astype("<i2").tobytes()


def test_feed_positions_rewind_and_bound() -> None:
    feed = AudioFeed(max_seconds=1.0)
    feed.push(b"\x01")  # odd byte carried to the next push
    feed.push(b"\x00" + bytes(479 * 2))
    assert feed.end == 480 and feed.take(100) == b"\x01\x00" + bytes(198)
    feed.push(bytes(48_000 * 2))  # 2 s more than the 1 s bound
    assert feed.end - feed.start == 24_000 and feed.sent_upto == feed.start
    assert feed.dropped_samples > 0
    position = feed.sent_upto
    feed.take(1000)
    assert feed.seek(0) == feed.start == position  # cannot go back past what is kept


def test_feed_gate_marks_speech_runs() -> None:
    started: list[int] = []
    feed = AudioFeed(on_speech_start=lambda: started.append(1))
    feed.push(bytes(ms_to_samples(1000) * 2))
    assert not feed.voiced and feed.recent_speech_start(ms_to_samples(2000), 0) is None
    feed.push(tone(800))
    assert feed.voiced and feed.run_start == ms_to_samples(1000)
    feed.push(bytes(ms_to_samples(600) * 2))
    assert not feed.voiced and started == [1]
    assert feed.recent_speech_start(ms_to_samples(2000), ms_to_samples(300)) == ms_to_samples(700)
    feed.push(bytes(ms_to_samples(3000) * 2))
    assert feed.recent_speech_start(ms_to_samples(2000), 0) is None
    assert samples_to_ms(feed.quiet_for()) >= 3000


def test_samples_to_ms_rounds_down() -> None:
    assert samples_to_ms(12001) == 500 and samples_to_ms(23) == 0 and samples_to_ms(24) == 1
