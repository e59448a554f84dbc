"""The silence gate end to end: Janus, the bot as `translator-bot join`, the fake, two aiortc people.

Alice and Beatriz talk in turns with long pauses. Each listener must hear every sentence of the other
translated (named by the recogniser from what they recorded), and the fake must see no input appends
at all once, in a long pause, every lane had given its model what it needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from translator_bot.fake.state import FakeOptions
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.rig import InterpreterRig

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

PAUSE_S = 12.0
# Into a pause, how long a lane may still be sending (see tests/integration/test_silence_gate.py).
QUIET_AFTER_S = {"realtime": 2.5, "translate": 8.0}


@pytest.mark.parametrize("engine", ["realtime", "translate"])
async def test_long_pauses_send_nothing_and_every_sentence_arrives(
    janus: JanusServer, tmp_path: Path, engine: str
) -> None:
    rig = InterpreterRig(janus, engine, tmp_path / "transcripts", fake_options=FakeOptions(heartbeat_ms=1000))
    in_pauses: list[int] = []
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.fake is not None
        fake = rig.fake

        def appends() -> int:
            return sum(r.appends_received for r in fake.state.sessions)

        for speaker, uid in (("Alice", "u1-en"), ("Beatriz", "u3-es"), ("Alice", "u2-en")):
            rig.say(speaker, uid)
            await rig.quiet()
            await asyncio.sleep(QUIET_AFTER_S[engine])
            before = appends()
            await asyncio.sleep(PAUSE_S - QUIET_AFTER_S[engine])
            in_pauses.append(appends() - before)
        assert await rig.stop_bot() == 0
    finally:
        await rig.aclose()
    alice = rig.people["Alice"].listening
    beatriz = rig.people["Beatriz"].listening
    assert alice is not None and beatriz is not None
    ids_alice = [h.utterance_id for h in heard_utterances(alice.recording)]
    ids_beatriz = [h.utterance_id for h in heard_utterances(beatriz.recording)]
    report = f"Alice heard {ids_alice}, Beatriz heard {ids_beatriz}, appends in the pauses {in_pauses}"
    assert ids_alice == ["u3-en"] and ids_beatriz == ["u1-es", "u2-es"], report
    assert in_pauses == [0, 0, 0], report
    assert rig.fake is not None and rig.fake.state.all_violations() == []
