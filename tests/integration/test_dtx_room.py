"""A meeting in a room that negotiates Opus DTX (`opus_dtx = true`), every part real: the participants ask
for it in their offers (`usedtx=1`, as web clients must), Janus answers with `usedtx=1`, and they then
send what Chrome sends (a 1-byte keep-alive every
~400 ms while silent, nothing in between). Two people talk in turns: each must hear the other
translated, every turn must end although the speaker's silence is mostly packets never sent, and the
bot must receive a small fraction of the packets a room without DTX sends while people are silent."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

from tests.conftest import StartJanus
from translator_bot.fake.state import FakeOptions
from translator_bot.testbed.dtx import Send
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.rig import InterpreterRig

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

FRAMES_IN = "translator_frames_in_total"
# After a speaker stops: the pause (0.5 s of turn detection, plus the 0.3 s before silence is presumed
# for a sender that sends nothing) + the translation streamed at real time (<= 3.5 s) + playout.
SETTLE_S = 6.5
# From the end of a sentence to the first translated audio (the translation starts once the turn ended),
# the median of the turns: ~0.6 s without DTX, ~0.9-1.0 s in the DTX room, ~2.3 s there when the pause
# reached the lanes only through aiortc's jitter buffer (its pts gaps, ~1.6 s late).
FIRST_AUDIO_MEDIAN_S = 1.8
FIRST_AUDIO_EACH_S = 3.5


async def frames_per_second(rig: InterpreterRig, seconds: float) -> float:
    """Audio frames (one per packet) the bot decoded per second, from all participants together."""
    before = (await rig.metrics()).get(FRAMES_IN, 0.0)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    after = (await rig.metrics()).get(FRAMES_IN, 0.0)
    return (after - before) / (time.monotonic() - started)


@pytest.mark.parametrize(
    ("engine", "dtx"),
    [("translate", True), ("realtime", True), ("translate", False)],
    ids=["translate", "realtime", "translate-no-dtx"],
)
async def test_two_people_talk_in_turns_in_a_dtx_room(
    start_janus: StartJanus, tmp_path: Path, engine: str, dtx: bool
) -> None:
    """`translate-no-dtx`: the same meeting without DTX (nobody asks, the room does not offer it)."""
    janus = await start_janus(opus_dtx=dtx)
    rig = InterpreterRig(
        janus, engine, tmp_path / "transcripts", fake_options=FakeOptions(heartbeat_ms=1000), dtx=dtx
    )
    delays: list[tuple[str, float | None]] = []
    try:
        await rig.start([("Alice", "en"), ("Beatriz", "es")])
        assert rig.bot is not None
        # They asked for DTX (Janus 1.1 agrees to any offer that asks; from 1.3.1 only in an `opus_dtx` room).
        assert [p.sim.dtx for p in rig.people.values()] == [dtx, dtx]

        silent_rate = await frames_per_second(rig, 3.0)  # nobody talks

        turns = [("Alice", "u1-en", "Beatriz"), ("Beatriz", "u3-es", "Alice"), ("Alice", "u2-en", "Beatriz")]
        for speaker, uid, listener in turns:
            rig.say(speaker, uid)
            await rig.quiet()
            ended = rig.spoken(speaker)[-1][2]
            assert ended is not None
            await asyncio.sleep(SETTLE_S)
            first = rig.first_loud_after(listener, ended)
            delays.append((uid, None if first is None else first - ended))

        underruns = (await rig.metrics()).get("translator_playout_underruns_total", 0.0)
        sender = rig.people["Alice"].sim.sender
        assert sender is not None
        sent = sender.dtx.sent if sender.dtx is not None else None
    finally:
        await rig.aclose()

    alice = rig.people["Alice"].listening
    beatriz = rig.people["Beatriz"].listening
    assert alice is not None and beatriz is not None
    ids_alice = [h.utterance_id for h in heard_utterances(alice.recording)]
    ids_beatriz = [h.utterance_id for h in heard_utterances(beatriz.recording)]
    report = f"Alice heard {ids_alice}, Beatriz heard {ids_beatriz}, delays {delays}\n{rig.bot.text[-3000:]}"
    assert ids_alice == ["u3-en"], report
    assert ids_beatriz == ["u1-es", "u2-es"], report
    # Every turn ended soon after its speaker fell silent (the translation starts when the turn ends).
    seconds = [delay for _, delay in delays if delay is not None]
    assert len(seconds) == len(delays) and max(seconds) < FIRST_AUDIO_EACH_S, report
    assert statistics.median(seconds) < FIRST_AUDIO_MEDIAN_S, report
    print(f"\n{engine} dtx={dtx}: {silent_rate:.1f} frames/s from two silent people; {delays=} {underruns=}")
    if dtx:
        # While both were silent the bot got ~2.5 packets a second from each instead of 50.
        assert silent_rate < 10.0, f"{silent_rate:.1f} frames/s received from two silent participants"
        assert sent is not None and sent[Send.NOTHING] > sent[Send.KEEPALIVE] > 0, sent
    else:
        assert silent_rate > 90.0, f"{silent_rate:.1f} frames/s received from two silent participants"
        assert sent is None
