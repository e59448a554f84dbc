"""Two people talk in turns with long pauses; every lane rests through its speaker's pauses.

Both engines against the protocol-faithful fake server, at real-time pace (the translate endpoint
speaks on its input's clock and the fake's output runs in real time, so an accelerated feed would
not leave it time to finish). Each sentence must come back translated whole (the fake recognises the
recording it heard, so a clipped first word or a sentence cut short gives no or the wrong
translation), and the fake must count no input appends in the long pauses once the model had what it
needed. A lane with the gate off, fed the same, shows the counter counting. A lane cut off from the
server by the network while it rests reconnects, and hears the next sentence whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from translator_bot.engine.base import EngineEvent, LaneSpec, TranslatedAudio, TranslationDone
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.engine.supervisor import SupervisedSession
from translator_bot.engine.translate import TranslateSession
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.languages import parse_language
from translator_bot.settings import EngineName, Settings
from translator_bot.testbed.proxy import TcpProxy

KEY = "sk-test-fake-0123456789"
FRAME_MS = 20
FRAME_BYTES = FRAME_MS * 48
# Who says what, when (ms from the start); each speaker pauses ~11 s between her sentences.
SCRIPT = [
    (500, "ana", "u1-en"),
    (7000, "bruno", "u1-es"),
    (14_500, "ana", "u2-en"),
    (21_000, "bruno", "u2-es"),
]
END_MS = 33_000
# How far into a pause the lane may still be sending: realtime needs the server VAD's 500 ms of
# silence (+ margin); translate needs the translation to have come out (about as long as the
# sentence) and the endpoint to have been heard idle after it (heartbeats every second).
QUIET_AFTER_MS: dict[EngineName, int] = {"realtime": 2000, "translate": 7500}


@dataclass
class Lane:
    engine: EngineName
    speaker: str
    target: str
    gate: bool
    session: SupervisedSession[Any]
    events: list[EngineEvent] = field(default_factory=list)
    pause_appends: list[int] = field(default_factory=list)  # appends the fake counted in each pause window


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    server = FakeRealtimeServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    assert server.state.internal_errors == []


def open_lane(fake: FakeRealtimeServer, engine: EngineName, speaker: str, target: str, gate: bool) -> Lane:
    s = Settings(
        openai_api_key=SecretStr(KEY), openai_base_url=fake.base_url, engine=engine, silence_gate=gate
    )
    source = "en" if speaker == "ana" else "es"
    spec = LaneSpec(f"{speaker}->{target}", speaker, parse_language(source), "other", parse_language(target))
    options = EngineOptions.from_settings(s)
    cls = TranslateSession if engine == "translate" else RealtimeSession
    return Lane(engine, speaker, target, gate, cls(endpoint_for(s, engine), spec, options))


def speaker_audio(speaker: str) -> bytes:
    """What one speaker's lane hears for the whole script: her sentences, silence otherwise."""
    pcm = np.zeros(END_MS * 24, dtype=np.int16)
    for at_ms, who, uid in SCRIPT:
        if who == speaker:
            voice = read_pcm(utterance(uid)).astype(np.int16)
            pcm[at_ms * 24 : at_ms * 24 + len(voice)] = voice
    return pcm.astype("<i2").tobytes()


def pause_windows(speaker: str, engine: EngineName) -> list[tuple[int, int]]:
    """(from, to) ms of each long pause of `speaker`, from when the model had what it needed."""
    spoken = [(at, at + utterance(uid).duration_ms) for at, who, uid in SCRIPT if who == speaker]
    starts = [start for start, _ in spoken[1:]] + [END_MS - FRAME_MS]
    return [(end + QUIET_AFTER_MS[engine], nxt) for (_, end), nxt in zip(spoken, starts, strict=True)]


def appends_of(fake: FakeRealtimeServer, lane: Lane) -> int:
    endpoint = "translations" if lane.engine == "translate" else "realtime"
    target = {"es": ("es", "Spanish"), "en": ("en", "English"), "de": ("de", "German")}[lane.target]
    return sum(
        r.appends_received
        for r in fake.state.sessions
        if r.endpoint == endpoint and r.target_language in target
    )


async def collect(lane: Lane) -> None:
    async for event in lane.session.events():
        lane.events.append(event)


async def play(fake: FakeRealtimeServer, lanes: list[Lane]) -> None:
    """Every lane's speaker audio in 20 ms frames at real-time pace, counting appends in the pauses."""
    loop = asyncio.get_running_loop()
    audio = {lane.speaker: speaker_audio(lane.speaker) for lane in lanes}
    marks: dict[int, list[tuple[Lane, int, str]]] = {}
    for lane in lanes:
        for index, (start, end) in enumerate(pause_windows(lane.speaker, lane.engine)):
            marks.setdefault(start // FRAME_MS, []).append((lane, index, "from"))
            marks.setdefault(end // FRAME_MS, []).append((lane, index, "to"))
    began: dict[tuple[int, int], int] = {}
    t0 = loop.time()
    for frame in range(END_MS // FRAME_MS):
        for lane, index, edge in marks.get(frame, []):
            count = appends_of(fake, lane)
            if edge == "from":
                began[(id(lane), index)] = count
            else:
                lane.pause_appends.append(count - began[(id(lane), index)])
        for lane in lanes:
            pcm = audio[lane.speaker]
            lane.session.send_audio(pcm[frame * FRAME_BYTES : (frame + 1) * FRAME_BYTES])
        await asyncio.sleep(max(0.0, t0 + (frame + 1) * FRAME_MS / 1000 - loop.time()))


def translations(lane: Lane) -> list[bytes]:
    done = [e.item_id for e in lane.events if isinstance(e, TranslationDone)]
    audio = {
        item: b"".join(e.pcm for e in lane.events if isinstance(e, TranslatedAudio) and e.item_id == item)
        for item in done
    }
    return [pcm for pcm in audio.values() if pcm]


def expected(lane: Lane) -> list[bytes]:
    replies = [utterance(uid).translations[lane.target] for _, who, uid in SCRIPT if who == lane.speaker]
    return [read_pcm(utterance(reply)).astype("<i2").tobytes() for reply in replies]


async def test_two_people_in_turns_every_sentence_whole_and_no_appends_in_the_pauses(
    fake: FakeRealtimeServer,
) -> None:
    lanes = [
        open_lane(fake, engine, speaker, target, gate=True)
        for engine in ("realtime", "translate")
        for speaker, target in (("ana", "es"), ("bruno", "en"))
    ]
    control = open_lane(fake, "realtime", "ana", "de", gate=False)
    everyone = [*lanes, control]
    await asyncio.gather(*(lane.session.start() for lane in everyone))
    readers = [asyncio.create_task(collect(lane)) for lane in everyone]
    try:
        await play(fake, everyone)
        await asyncio.sleep(1.0)  # the last translations' tails
    finally:
        await asyncio.gather(*(lane.session.aclose() for lane in everyone))
        await asyncio.gather(*readers, return_exceptions=True)
    for lane in everyone:
        got, want = translations(lane), expected(lane)
        # Each sentence translated in full: the fake answers the recording it recognised, whole.
        assert len(got) == len(want), (lane.engine, lane.speaker, len(got))
        for pcm, reply in zip(got, want, strict=True):
            # Whole but for an all-zero last chunk of the recording, which reads as a heartbeat.
            assert reply.startswith(pcm) and len(reply) - len(pcm) < 200 * 48, (lane.engine, lane.speaker)
            assert not any(reply[len(pcm) :])
    for lane in lanes:
        assert lane.pause_appends == [0, 0], (lane.engine, lane.speaker, lane.pause_appends)
        assert lane.session.resting and lane.session.rested_samples > 2 * 8 * 24_000
    # The same counter, on a lane that does not rest: ~50 appends a second in the same pauses.
    seconds = sum(end - start for start, end in pause_windows("ana", "realtime")) / 1000
    assert all(n > 0 for n in control.pause_appends)
    assert sum(control.pause_appends) >= 0.8 * 50 * seconds, control.pause_appends
    assert control.session.rested_samples == 0
    assert fake.state.all_violations() == []


class Microphone:
    """A speaker's audio as a lane gets it: 20 ms frames at real-time pace, silence between what is said."""

    def __init__(self, session: SupervisedSession[Any]) -> None:
        self.session = session
        self.queue = bytearray()
        self.task: asyncio.Task[None] | None = None

    def say(self, uid: str) -> None:
        self.queue += read_pcm(utterance(uid)).astype("<i2").tobytes()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        t0, frame = loop.time(), 0
        while True:
            pcm = bytes(self.queue[:FRAME_BYTES])
            del self.queue[:FRAME_BYTES]
            self.session.send_audio(pcm + bytes(FRAME_BYTES - len(pcm)))
            frame += 1
            await asyncio.sleep(max(0.0, t0 + frame * FRAME_MS / 1000 - loop.time()))


async def until(condition: Any, seconds: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, f"not {what} within {seconds} s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("engine", ["realtime", "translate"])
async def test_a_resting_lane_cut_off_by_the_network_reconnects_and_hears_the_next_sentence(
    fake: FakeRealtimeServer, engine: EngineName
) -> None:
    """The connection is aborted by a TCP proxy while the lane rests (no close frame), and the
    provider stays unreachable for 3 s, during which the speaker starts her next sentence."""
    proxy = await TcpProxy("127.0.0.1", fake.port).start()
    s = Settings(openai_api_key=SecretStr(KEY), openai_base_url=proxy.url("http", "/v1"), engine=engine)
    spec = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
    options = EngineOptions.from_settings(s)
    cls = TranslateSession if engine == "translate" else RealtimeSession
    session: SupervisedSession[Any] = cls(endpoint_for(s, engine), spec, options, healthy_after_s=2.0)
    lane = Lane(engine, "ana", "es", True, session)
    mic = Microphone(session)
    await session.start()
    reader = asyncio.create_task(collect(lane))
    mic.task = asyncio.create_task(mic.run())
    try:
        mic.say("u1-en")
        await until(lambda: len(translations(lane)) == 1 and session.resting, 20, "resting")
        rested_appends = fake.state.sessions[0].appends_received
        await asyncio.sleep(2.5)  # resting: the socket stays open with nothing sent, and is not dropped
        assert session.reconnects == 0 and fake.state.sessions[0].appends_received == rested_appends
        proxy.refuse_for(3.0)
        assert proxy.cut() == 1
        mic.say("u2-en")
        await until(lambda: len(translations(lane)) == 2, 25, "translated after the outage")
    finally:
        mic.task.cancel()
        await asyncio.gather(mic.task, return_exceptions=True)
        await session.aclose()
        await asyncio.gather(reader, return_exceptions=True)
        await proxy.stop()
    assert session.reconnects >= 1 and proxy.refused >= 1
    first, second = translations(lane)
    for pcm, uid in ((first, "u1-es"), (second, "u2-es")):
        reply = read_pcm(utterance(uid)).astype("<i2").tobytes()
        assert reply.startswith(pcm) and len(reply) - len(pcm) < 200 * 48, uid
    # The sentence spoken during the outage was heard whole, by the session that came after it.
    heard = [r.recognised for r in fake.state.sessions]
    assert heard[0] == ["u1-en"] and heard[-1] == ["u2-en"], heard
    assert fake.state.all_violations() == []
