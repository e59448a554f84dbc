"""The lane's input on its way to the model: appends, and the bounded replay when a link takes over."""

from __future__ import annotations

from translator_bot.engine.intake import MAX_REPLAY_MS, Intake
from translator_bot.engine.realtime import RealtimeEngine
from translator_bot.engine.translate import TranslateEngine


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


ROOM_FRAME = bytes(480 * 2)  # 20 ms at 24 kHz: what the room hands a lane at a time


def frames_held_back(chunk_ms: int, frames: int = 50) -> int:
    """The most room frames the intake keeps before a whole append is ready."""
    intake = Intake("x", chunk_ms=chunk_ms, history_seconds=20.0)
    held = worst = 0
    for _ in range(frames):
        held = 0 if intake.push(ROOM_FRAME) else held + 1
        worst = max(worst, held)
        while intake.next_chunk() is not None:
            pass
    return worst


def test_the_realtime_engine_sends_each_room_frame_as_it_comes() -> None:
    """The server's turn detection hears the end of speech as soon as the bot does."""
    assert frames_held_back(RealtimeEngine.chunk_ms) == 0


def test_the_translate_engine_holds_input_back_at_most_one_room_frame() -> None:
    assert frames_held_back(TranslateEngine.chunk_ms) <= 1
