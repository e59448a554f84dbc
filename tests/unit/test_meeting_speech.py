"""One speech-end tracker per speaker: every lane of the speaker sees, from its opening on, what a
tracker of its own fed the same audio would say, including a lane opened in the middle of speech."""

from __future__ import annotations

import asyncio

from tests.unit.test_meeting import FakeRoom, member, passthrough, wait_for
from tests.unit.test_speech import silence, tone
from translator_bot.audio.clock import FakeClock
from translator_bot.interpreter.meeting import Meeting
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerChanged
from translator_bot.interpreter.speech import SpeechEndTracker
from translator_bot.settings import Settings


async def test_every_lane_of_a_speaker_sees_what_its_own_tracker_would() -> None:
    now = 100.0
    room = FakeRoom()
    meeting = Meeting(
        Settings(engine="passthrough", metrics_port=0),
        room,
        "speech",
        engine_factory=passthrough,
        playout_clock=FakeClock(),
        clock=lambda: now,
        lane_change_interval=0.0,
    )
    runner = asyncio.create_task(meeting.run())
    own: dict[LaneKey, SpeechEndTracker] = {}
    checked = 0

    def say(audio: bytes) -> None:
        nonlocal now, checked
        for start in range(0, len(audio), 960):
            chunk = audio[start : start + 960]
            now += 0.02
            meeting._speaker_audio("a", chunk)
            for key, tracker in own.items():
                tracker.feed(chunk, now)
                view = meeting.lanes[key]._speech
                assert (view.last_speech_end, view.speaking) == (tracker.last_speech_end, tracker.speaking)
                checked += 1

    try:
        await room.queue.put(PeerChanged(member("a", "Alice", "en")))
        await room.queue.put(PeerChanged(member("b", "Bea", "es")))
        await wait_for(lambda: LaneKey("a", "es") in meeting.lanes)
        own[LaneKey("a", "es")] = SpeechEndTracker()
        say(silence(100) + tone(400) + silence(300) + tone(200))  # the second lane opens mid-speech
        await room.queue.put(PeerChanged(member("c", "Chloé", "fr")))
        await wait_for(lambda: LaneKey("a", "fr") in meeting.lanes)
        own[LaneKey("a", "fr")] = SpeechEndTracker()
        say(tone(200) + silence(400) + tone(300) + silence(400))
        ends = {key: meeting.lanes[key]._speech.last_speech_end for key in own}
        assert None not in ends.values() and len(set(ends.values())) == 1  # both saw the last end
        # One tracker per speaker with a lane, however many lanes the speaker has.
        assert set(meeting._speech) == {lane.plan.speaker.id for lane in meeting.lanes.values()}
        assert checked > 50
    finally:
        meeting.stop()
        await runner
        await meeting.aclose()
