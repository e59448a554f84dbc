"""Lazy lanes end to end, every part real: Janus in the private network namespace, the bot as
`translator-bot join` with per-language output (lanes open on speech by default) and the lane cap at 2,
the package's fake realtime server, and aiortc participants publishing silence until they speak.

Three people join and never speak; a fourth joins last and asks a question. With lanes at the join the
cap goes to the silent early joiners and the questioner gets no interpretation; here the silent ones
open no model session at all, the questioner's lanes are the only two, and the model gets their first
sentence whole although their lanes opened only when the bot heard it begin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from translator_bot.fake.state import SessionRecord
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.rig import InterpreterRig

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

SETTLE_S = 6.0  # turn detection + translation streamed in real time + playout, with room to spare


async def test_silent_listeners_cost_nothing_and_a_late_questioner_gets_the_capped_lanes(
    janus: JanusServer, tmp_path: Path
) -> None:
    rig = InterpreterRig(
        janus,
        "translate",
        tmp_path / "transcripts",
        env={"TRANSLATOR_OUTPUT_MODE": "per-language", "TRANSLATOR_MAX_LANES": "2"},
    )
    people = [("Alice", "en"), ("Bea", "es"), ("Dieter", "de"), ("Quique", "es")]  # in join order
    try:
        # Nobody has spoken: no feed exists to subscribe to yet.
        await rig.start(people, subscribe=False)
        assert rig.bot is not None and rig.fake is not None
        await asyncio.sleep(2.0)  # long enough for lanes at the join to have connected
        _, health = await rig.health()
        ids = {name: str(person.sim.id) for name, person in rig.people.items()}
        assert health["lanes"] == {} and health["feeds"] == [], health
        assert health["awaiting_speech"] == sorted(ids.values()), health
        assert health["unserved_lanes"] == [], health
        assert rig.fake.state.sessions == [], "a silent participant opened a model session"

        # The questioner's first sentence opens their lanes; the listeners subscribe once their feed is
        # there (the translation of that first sentence may begin before they do: it is checked at the
        # model, which must have been given all of it).
        rig.say("Quique", "u3-es")
        await rig.subscribe(["Alice", "Dieter"], 20)
        await rig.quiet()
        await asyncio.sleep(SETTLE_S)
        rig.say("Quique", "u2-es")
        await rig.quiet()
        await asyncio.sleep(SETTLE_S)

        _, health = await rig.health()
        quique = ids["Quique"]
        assert sorted(health["lanes"]) == [f"{quique}->de", f"{quique}->en"], health
        assert health["unserved_lanes"] == [], health
        assert sorted(health["feeds"]) == ["lang:de", "lang:en"], health
        sessions: list[SessionRecord] = rig.fake.state.sessions
        assert sorted(s.target_language or "" for s in sessions) == ["de", "en"], [
            s.snapshot() for s in sessions
        ]
        for session in sessions:
            # The first sentence whole: recognised as that fixture, nothing unrecognisable before it.
            assert session.recognised == ["u3-es", "u2-es"], session.snapshot()
            assert session.unrecognised == 0, session.snapshot()
        assert await rig.stop_bot() == 0, rig.bot.text
    finally:
        await rig.aclose()

    heard = {
        name: [h.utterance_id for h in heard_utterances(person.listening.recording)]
        for name, person in rig.people.items()
        if person.listening is not None
    }
    report = f"{heard}\n{rig.bot.text[-3000:] if rig.bot else ''}"
    # What they hear once subscribed: the second sentence certainly, in their language.
    assert heard["Alice"][-1:] == ["u2-en"], report
    assert heard["Dieter"][-1:] == ["u2-de"], report
