"""The lane's input on its way to the model: appends, and the bounded replay when a link takes over."""

from __future__ import annotations

from translator_bot.engine.intake import MAX_REPLAY_MS, Intake


def test_appends_are_whole_chunks() -> None:
    intake = Intake("realtime", chunk_ms=40, history_seconds=20.0)
    assert not intake.push(bytes(959 * 2)) and intake.next_chunk() is None
    assert intake.push(bytes(2))
    assert intake.next_chunk() == bytes(960 * 2) and intake.next_chunk() is None


def test_a_new_link_hears_from_the_resume_point_but_never_more_than_the_bound() -> None:
    intake = Intake("translate", chunk_ms=100, history_seconds=20.0)
    intake.push(bytes(24_000 * 2 * 5))
    while intake.next_chunk() is not None:
        pass
    assert intake.switch(None) == 0  # a quiet switch goes on where the last link stopped
    assert intake.switch(24_000 * 4) == 1000 and intake.feed.sent_upto == 24_000 * 4
    intake.push(bytes(24_000 * 2 * 14))  # 19 s kept, none of it sent for a while
    # Asked for all of it, the new link gets only the last MAX_REPLAY_MS: a skipped backlog, no replay.
    assert intake.switch(0) == 0 and intake.feed.sent_upto == 24_000 * 9
    assert intake.feed.end - intake.feed.sent_upto == MAX_REPLAY_MS * 24
    assert intake.replayed_ms == 1000
