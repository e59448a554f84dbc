"""The playout's "cut short" reaching the lane: the typed item key routes it to the lane whose audio
it was, and a lane heard by several listeners keeps what the furthest of them heard."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_meeting import drain, member, running, wait_for
from translator_bot.audio.playout import PlayoutKey
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerChanged
from translator_bot.settings import Settings

MS = 24  # 24 kHz samples per millisecond


async def test_a_cut_short_item_reaches_its_lane_with_what_the_furthest_listener_heard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(engine="passthrough", playout_cushion_ms=60, playout_hold_ms=0, metrics_port=0)
    async with running(settings, "m-cut") as (room, meeting):
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await room.queue.put(PeerChanged(member("c", "Carlos", "es")))
        lane_key = LaneKey("a", "es")
        await wait_for(lambda: lane_key in meeting.lanes and len(meeting.feeds) == 3)
        cut: list[tuple[str, int]] = []
        # Recorded at the lane (what it passes on to its engine is the engine's tests' business; the
        # method itself is checked by mypy at the call, so the spy does not insist that it exists).
        monkeypatch.setattr(
            meeting.lanes[lane_key], "cut_short", lambda item, heard: cut.append((item, heard)), raising=False
        )
        meeting.deliver_audio(lane_key, "item_1", np.full(400 * MS, 3000, "<i2").tobytes())
        to_b, to_c = room.feed_for("b"), room.feed_for("c")
        await drain(to_b.track, 10)  # Bea heard 200 ms of it
        await drain(to_c.track, 5)  # Carlos 100 ms
        item = PlayoutKey(str(lane_key), "item_1")
        assert to_c.track.clear() == {item: 100 * MS}
        assert cut == [("item_1", 200 * MS)]
