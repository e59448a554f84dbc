"""The decisions of when the bot stays in a meeting and when it goes."""

from __future__ import annotations

import pytest

from translator_bot.room.lifecycle import (
    BACKOFF_CAP_S,
    Presence,
    empty_room_verdict,
    next_attempt_at,
    reconnect_delay,
)


def test_reconnect_backoff_starts_at_once_doubles_and_is_capped() -> None:
    middle = [reconnect_delay(n, lambda: 0.5) for n in range(8)]
    assert middle == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, BACKOFF_CAP_S, BACKOFF_CAP_S]
    # Jitter spreads each step by +-20 % and never exceeds the cap by more than that.
    assert reconnect_delay(3, lambda: 0.0) == pytest.approx(1.6)
    assert reconnect_delay(3, lambda: 1.0) == pytest.approx(2.4)
    assert max(reconnect_delay(50, lambda: 1.0), reconnect_delay(50, lambda: 0.0)) <= BACKOFF_CAP_S * 1.2


def test_reconnect_window() -> None:
    assert next_attempt_at(lost_at=100.0, now=101.0, delay=2.0, window_s=120.0) == 103.0
    # The last attempt is moved up to the end of the window, then nothing more.
    assert next_attempt_at(lost_at=100.0, now=219.0, delay=8.0, window_s=120.0) == 220.0
    assert next_attempt_at(lost_at=100.0, now=220.0, delay=0.0, window_s=120.0) is None
    # A window of 0 gives up at once.
    assert next_attempt_at(lost_at=5.0, now=5.0, delay=0.0, window_s=0.0) is None


def test_alone_in_the_room_counts_from_the_moment_the_last_person_left() -> None:
    presence = Presence(None).update(people_present=False, now=10.0)  # e.g. at the join, nobody there
    assert presence.alone_since == 10.0
    assert presence.update(people_present=False, now=30.0).alone_since == 10.0  # still the same stretch
    assert empty_room_verdict(presence, now=69.9, empty_room_s=60) is None
    assert empty_room_verdict(presence, now=70.0, empty_room_s=60) == (
        "nobody but interpreters in the room for 60 s"
    )
    # Someone comes: the countdown is off; they go: it starts again from then.
    back = presence.update(people_present=True, now=50.0)
    assert back.alone_since is None and empty_room_verdict(back, now=1e9, empty_room_s=60) is None
    again = back.update(people_present=False, now=80.0)
    assert empty_room_verdict(again, now=139.0, empty_room_s=60) is None
    assert empty_room_verdict(again, now=140.0, empty_room_s=60) is not None
    assert again.leave_at(60) == 140.0


def test_empty_room_limit_0_never_leaves() -> None:
    alone = Presence(0.0)
    assert alone.leave_at(0) is None
    assert empty_room_verdict(alone, now=1e9, empty_room_s=0) is None
