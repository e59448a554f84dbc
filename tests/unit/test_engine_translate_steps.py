"""Engine `translate` as a protocol: server events in, lane events and client events out.

The endpoint has no items: the engine groups source text into segments and pairs translated output
with the oldest open one. Fed here event by event, with the loop time given, no socket involved.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from translator_bot.engine.base import (
    LaneSpec,
    SourceTranscript,
    SpeechStarted,
    TranslatedAudio,
    TranslationDone,
    TranslationTranscript,
)
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.step import At, Step
from translator_bot.engine.translate import ITEM_IDLE_S, TranslateEngine, TranslateLinkState
from translator_bot.engine.wire import encode_event
from translator_bot.engine.wire_translate import parse_server_event as parse_translation_server_event
from translator_bot.languages import parse_language

SPEC = LaneSpec("ana->es", "Ana", None, "Bruno", parse_language("es-MX"))
VOICE = b"\x10\x00" * 2400


class Lane:
    """One socket's state and a loop clock that the test moves."""

    def __init__(self) -> None:
        self.engine = TranslateEngine(EngineOptions())
        self.state = TranslateLinkState()
        self.input = AudioFeed()
        self.now = 0.0

    def at(self) -> At:
        return At(now=self.now, clock=lambda: 1.25, lane_id=SPEC.lane_id, serial=1, origin=0, feed=self.input)

    def feed(self, *events: dict[str, Any]) -> Step:
        step = Step()
        for data in events:
            event = parse_translation_server_event(json.dumps({"event_id": "srv_1", **data}))
            step += self.engine.on_server_event(self.state, event, self.at())
        return step


def source(delta: str, elapsed_ms: int) -> dict[str, Any]:
    return {"type": "session.input_transcript.delta", "delta": delta, "elapsed_ms": elapsed_ms}


def target(delta: str) -> dict[str, Any]:
    return {"type": "session.output_transcript.delta", "delta": delta}


def audio(pcm: bytes) -> dict[str, Any]:
    return {
        "type": "session.output_audio.delta",
        "delta": base64.b64encode(pcm).decode(),
        "sample_rate": 24000,
    }


def test_a_translation_is_paired_with_its_original_and_ended_by_a_heartbeat() -> None:
    lane = Lane()
    step = lane.feed(
        audio(bytes(4800)),  # a heartbeat before anything: nothing to end
        source("Good morning.", 400),
        target("Buenos "),
        audio(VOICE),
        target("días."),
        audio(bytes(4800)),  # the translation is over
    )
    assert step.events == [
        SourceTranscript("ana->es-t1", "Good morning.", final=False),
        TranslationTranscript("ana->es-t1", "Buenos ", final=False),
        TranslatedAudio("ana->es-t1", VOICE),
        TranslationTranscript("ana->es-t1", "días.", final=False),
        SourceTranscript("ana->es-t1", "Good morning.", final=True),
        TranslationTranscript("ana->es-t1", "Buenos días.", final=True),
        TranslationDone("ana->es-t1"),
    ]
    assert step.sends == [] and not lane.state.items


def test_two_sentences_streamed_back_to_back_become_two_items() -> None:
    lane = Lane()
    step = lane.feed(
        source("Hello.", 0),
        source(" How are you?", 1000),  # a pause after a finished sentence: the next segment
        target("Hola."),
        target(" ¿Cómo estás?"),  # the first translation ended a sentence and the next original waits
    )
    assert [f"{type(e).__name__}:{getattr(e, 'item_id', '')}" for e in step.events] == [
        "SourceTranscript:ana->es-t1",
        "SourceTranscript:ana->es-t2",
        "TranslationTranscript:ana->es-t1",
        "SourceTranscript:ana->es-t1",
        "TranslationTranscript:ana->es-t1",
        "TranslationDone:ana->es-t1",
        "TranslationTranscript:ana->es-t2",
    ]
    assert [item.item_id for item in lane.state.items] == ["ana->es-t2"]


def test_timers_end_an_idle_item_and_a_finished_socket_ends_them_all() -> None:
    lane = Lane()
    lane.feed(source("One.", 0), target("Uno."), audio(VOICE))
    assert lane.engine.on_tick(lane.state, lane.at(), finished=False) == Step()
    lane.now += ITEM_IDLE_S
    assert lane.engine.on_tick(lane.state, lane.at(), finished=False).events[-1] == TranslationDone(
        "ana->es-t1"
    )
    lane.feed(source("Two.", 5000))
    assert lane.engine.on_tick(lane.state, lane.at(), finished=True).events == [
        SourceTranscript("ana->es-t2", "Two.", final=True),
        TranslationDone("ana->es-t2"),
    ]


def test_retiring_asks_the_server_to_flush_and_waits_for_session_closed() -> None:
    lane = Lane()
    assert [json.loads(encode_event(e)) for e in lane.engine.on_retire(lane.state, lane.input).sends] == [
        {"type": "session.close"}
    ]
    assert lane.engine.has_pending_output(lane.state)
    lane.feed(source("Last words", 0))
    step = lane.feed({"type": "session.closed"})
    assert step.events == [
        SourceTranscript("ana->es-t1", "Last words", final=True),
        TranslationDone("ana->es-t1"),
    ]
    assert not lane.engine.has_pending_output(lane.state)


def test_speech_being_heard_in_translation_is_not_replayed_after_a_drop() -> None:
    lane = Lane()
    t = np.arange(24_000) / 24_000
    voiced = (6000 * np.sin(2 * np.pi * 200 * t)).astype("<i2").tobytes()
    lane.input.push(bytes(24_000 * 2))
    lane.input.push(voiced)  # speech from 1 s
    assert lane.engine.on_local_speech_start(lane.at()).events == [SpeechStarted(1.25)]
    assert lane.engine.resume_point(lane.state, lane.input) == 24_000 - 300 * 24  # with its padding
    lane.feed(audio(VOICE))  # its translation begins to be heard
    assert lane.engine.resume_point(lane.state, lane.input) is None
    assert not lane.engine.clean_point(lane.state, lane.input)
    assert lane.engine.switch_point(lane.state, lane.input) is None  # the old socket finishes it


def test_errors_and_audio_in_another_format() -> None:
    lane = Lane()
    refused = {"type": "error", "error": {"type": "insufficient_quota", "code": None, "message": "no"}}
    assert lane.feed(refused).fatal == ("insufficient_quota", None)
    at_48k = {**audio(VOICE), "sample_rate": 48000}
    assert lane.feed(at_48k) == Step()
