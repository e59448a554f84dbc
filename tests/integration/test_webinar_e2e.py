"""The per-language output mode end to end, every part real: Janus in the private network namespace, the
bot as `translator-bot join` with TRANSLATOR_OUTPUT_MODE=per-language, the package's fake realtime server,
and aiortc participants who speak recorded fixtures and record the interpreter feed their page would pick
(the one whose label lists their id: `feed_is_for`, the rule the meeting page's labels.js follows).

One speaker and listeners in three languages: the bot publishes one feed per language, not one per person;
every listener hears the speaker in their language; nobody hears their own words translated back; a
listener who joins late is added to their language's feed (relabelled, not published again) and hears
what comes next; one who leaves is taken off it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from translator_bot.room.metadata import parse_description
from translator_bot.room.videoroom import PublisherInfo
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.participant import SimParticipant
from translator_bot.testbed.rig import InterpreterRig, RigPerson

pytestmark = [pytest.mark.janus, pytest.mark.timeout(300)]

SETTLE_S = 6.0  # turn detection + translation streamed in real time + playout, with room to spare


def audience(pub: PublisherInfo) -> list[object] | None:
    for stream in pub.streams:
        described = parse_description(stream.description)
        if described and described.get("role") == "interpreter":
            target = described.get("for")
            return target if isinstance(target, list) else None
    return None


def interpreter_feeds(sim: SimParticipant) -> dict[int | str, PublisherInfo]:
    return {pid: pub for pid, pub in sim.publishers.items() if audience(pub) is not None}


async def settle(rig: InterpreterRig) -> None:
    await rig.quiet()
    await asyncio.sleep(SETTLE_S)


async def wait_until(predicate: object, seconds: float, what: str) -> None:
    assert callable(predicate)
    try:
        async with asyncio.timeout(seconds):
            while not predicate():  # noqa: ASYNC110 - polls the room as a participant sees it
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds:.0f} s: {what}") from None


async def test_one_feed_per_language_serves_every_listener_in_their_language(
    janus: JanusServer, tmp_path: Path
) -> None:
    rig = InterpreterRig(
        janus,
        "translate",
        tmp_path / "transcripts",
        # Lanes at the join: the feeds are checked before anyone speaks (test_lazy_lanes_e2e: by speech).
        env={"TRANSLATOR_OUTPUT_MODE": "per-language", "TRANSLATOR_LANES_OPEN": "join"},
    )
    people = [("Alice", "en"), ("Ben", "en"), ("Bea", "es"), ("Carlos", "es"), ("Dieter", "de")]
    try:
        await rig.start(people)
        assert rig.bot is not None
        sims = {name: person.sim for name, person in rig.people.items()}
        _, health = await rig.health()
        assert health["feeds"] == ["lang:de", "lang:en", "lang:es"], health
        # Three feeds in the room for five listeners; those of a language share one.
        feeds = interpreter_feeds(sims["Alice"])
        assert len(feeds) == 3, feeds
        feed_of = {name: person.listening.feed for name, person in rig.people.items() if person.listening}
        assert feed_of["Alice"] == feed_of["Ben"] and feed_of["Bea"] == feed_of["Carlos"]
        assert len(set(feed_of.values())) == 3, feed_of

        rig.say("Alice", "u1-en")
        await settle(rig)
        rig.say("Bea", "u3-es")
        await settle(rig)

        # Dana joins in German: the German feed is relabelled for her (same publisher), she plays it.
        german = feed_of["Dieter"]
        dana = SimParticipant(janus.url, janus.room, "Dana", "de")
        await dana.join()
        rig.people["Dana"] = RigPerson(dana)
        await rig.bot.wait_line(r"relabelling the feed for the de listeners", 15)
        try:
            listening = await dana.subscribe_interpreter(timeout_s=15)
        except TimeoutError:
            seen = {pid: (pub.display, audience(pub)) for pid, pub in dana.publishers.items()}
            raise AssertionError(
                f"Dana ({dana.id}) found no feed for her: {seen}; {dana.events[-6:]}"
            ) from None
        assert listening.feed == german
        rig.people["Dana"].listening = listening
        await (await listening.wait_track(15)).wait_first_frame(15)
        await rig.wait_bot_hears_everyone(20)

        # Carlos leaves: the Spanish feed stays for Bea, labelled without him.
        carlos_id = sims["Carlos"].id
        carlos_heard = heard_utterances(rig.people["Carlos"].listening.recording)  # type: ignore[union-attr]
        await sims["Carlos"].leave()
        spanish = feed_of["Bea"]
        await wait_until(
            lambda: carlos_id not in (audience(sims["Bea"].publishers[spanish]) or [carlos_id]),
            15,
            "the Spanish feed relabelled without Carlos",
        )
        assert audience(sims["Bea"].publishers[spanish]) == [sims["Bea"].id]

        rig.say("Alice", "u2-en")
        await settle(rig)
        _, health = await rig.health()
        assert health["feeds"] == ["lang:de", "lang:en", "lang:es"] and not health["degraded"], health
        assert len(interpreter_feeds(sims["Alice"])) == 3
        assert await rig.stop_bot() == 0, rig.bot.text
    finally:
        await rig.aclose()

    heard = {
        name: [h.utterance_id for h in heard_utterances(person.listening.recording)]
        for name, person in rig.people.items()
        if person.listening is not None and name != "Carlos"
    }
    heard["Carlos"] = [h.utterance_id for h in carlos_heard]
    report = f"{heard}\n{rig.bot.text[-3000:] if rig.bot else ''}"
    # The speaker and the other English listener hear Bea in English; never Alice's own words.
    assert heard["Alice"] == ["u3-en"], report
    assert heard["Ben"] == ["u3-en"], report
    # Bea hears Alice in Spanish and never herself; Carlos heard what was said before he left.
    assert heard["Bea"] == ["u1-es", "u2-es"], report
    assert heard["Carlos"] == ["u1-es"], report
    assert heard["Dieter"] == ["u1-de", "u3-de", "u2-de"], report
    assert heard["Dana"] == ["u2-de"], report
    captions = [json.loads(text) for _, text in rig.people["Dieter"].listening.messages]  # type: ignore[union-attr]
    assert {c["speaker_name"] for c in captions} == {"Alice", "Bea"}, captions[-3:]
