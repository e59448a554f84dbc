"""The meeting in per-language mode against a fake room: one feed per target language, labelled with the
ids it serves, relabelled in place (not published again) as people join and leave, closed when its
language is gone; the speaker's words reach every listener of the other languages and never come back
to the speaker's own language."""

from __future__ import annotations

import numpy as np

from tests.unit.test_meeting import FakeRoom, SpeakerTrack, drain, member, running, wait_for
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.interpreter.plan import LaneKey
from translator_bot.interpreter.port import PeerAudio, PeerChanged, PeerLeft
from translator_bot.settings import Settings


def webinar_settings() -> Settings:
    # Lanes at the join: these tests follow feeds as people come and go, before anyone speaks
    # (test_meeting_lazy_lanes covers the per-language default, lanes opened by speech).
    return Settings(
        engine="passthrough",
        playout_cushion_ms=60,
        metrics_port=0,
        output_mode="per-language",
        lanes_open="join",
    )


def live(room: FakeRoom, lang: str) -> list[object]:
    return [p for p in room.publications if not p.closed and isinstance(p.for_id, tuple) and p.lang == lang]


async def test_one_feed_per_language_relabelled_as_people_join_and_leave() -> None:
    async with running(webinar_settings(), "w1") as (room, meeting):
        for pid, name, lang in [("a", "Alice", "en"), ("b", "Bea", "es"), ("c", "Carlos", "es-MX")]:
            await room.queue.put(PeerChanged(member(pid, name, lang)))
        await wait_for(lambda: set(meeting.feeds) == {"lang:en", "lang:es"})
        await wait_for(lambda: meeting.feeds["lang:es"].audience == ("b", "c"))
        spanish = next(p for p in room.publications if p.lang == "es")
        await wait_for(lambda: spanish.for_id == ("b", "c"))
        published = len(room.publications)

        await room.queue.put(PeerChanged(member("d", "Dana", "es")))
        await wait_for(lambda: spanish.for_id == ("b", "c", "d"))
        await room.queue.put(PeerChanged(member("f", "Fleur", "fr")))
        await wait_for(
            lambda: "lang:fr" in meeting.feeds and meeting.feeds["lang:fr"].publication is not None
        )
        # Joins relabel the Spanish feed in place; only the new language got a feed of its own.
        assert len(room.publications) == published + 1
        assert not spanish.closed

        await room.queue.put(PeerLeft("b"))
        await wait_for(lambda: spanish.for_id == ("c", "d"))
        await room.queue.put(PeerLeft("f"))
        await wait_for(lambda: "lang:fr" not in meeting.feeds)
        assert all(p.closed for p in room.publications if p.lang == "fr")
        assert not spanish.closed


async def test_the_speaker_reaches_every_listener_of_other_languages_through_one_feed_each() -> None:
    async with running(webinar_settings(), "w2") as (room, meeting):
        people = [("a", "Alice", "en"), ("b", "Bea", "es"), ("c", "Carlos", "es"), ("e", "Ed", "en")]
        for pid, name, lang in people:
            await room.queue.put(PeerChanged(member(pid, name, lang)))
        await wait_for(lambda: set(meeting.feeds) == {"lang:en", "lang:es"} and len(meeting.lanes) == 4)
        spanish, english = meeting.feeds["lang:es"], meeting.feeds["lang:en"]
        # Ed's join reaches the English lanes once their change interval (1 s) is over.
        await wait_for(lambda: spanish.audience == ("b", "c") and english.audience == ("a", "e"))
        assert spanish.publication is not None and english.publication is not None

        await room.queue.put(PeerAudio("a", SpeakerTrack(read_pcm(utterance("u1-en")))))
        lane = meeting.lanes[LaneKey("a", "es")]
        await wait_for(lambda: bool(lane.latencies), 20)
        heard_es = await drain(spanish.track, 250)
        heard_en = await drain(english.track, 250)
        assert np.flatnonzero(np.abs(heard_es) > 300).size, "the Spanish listeners heard nothing"
        assert np.abs(heard_en).max() == 0, "Alice's English came back on the English feed"
