"""Participant metadata and room event parsing: precedence, normalisation, and garbage that must not raise."""

from __future__ import annotations

import json
from typing import Any

import pytest

from translator_bot.languages import parse_language
from translator_bot.room import videoroom
from translator_bot.room.metadata import (
    clean_text,
    interpreter_description,
    interpreter_display,
    parse_description,
    parse_participant,
    participant_description,
    participant_display,
)

EN = parse_language("en")


def parse(**kw: Any):
    return parse_participant(7, default_language=EN, **kw)


def test_metadata_wins_over_description_and_display() -> None:
    p, problems = parse(
        display="Bea [de]",
        metadata={"lang": "es-MX", "name": "Beatriz"},
        descriptions=['{"lang":"fr","name":"B"}'],
    )
    assert (p.language.tag, p.language_source, p.name) == ("es-MX", "metadata", "Beatriz")
    assert problems == []


def test_description_then_display_then_default() -> None:
    p, _ = parse(display="Bea [de]", descriptions=['{"lang":"fr"}'])
    assert (p.language.tag, p.language_source, p.name) == ("fr", "description", "Bea")
    p, _ = parse(display="Bea [de]", descriptions=["my microphone"])
    assert (p.language.tag, p.language_source, p.name) == ("de", "display", "Bea")
    p, _ = parse(display="Bea")
    assert (p.language.tag, p.language_source, p.name) == ("en", "default", "Bea")
    p, _ = parse()
    assert (p.language, p.name) == (EN, "participant 7")


@pytest.mark.parametrize(
    ("raw", "tag", "name"),
    [
        ("es-MX", "es-MX", "Spanish"),
        ("ES", "es", "Spanish"),
        ("spa", "es", "Spanish"),
        ("es_mx", "es-MX", "Spanish"),
        ("Spanish", "es", "Spanish"),
        ("deu", "de", "German"),
        ("cmn", "zh", "Chinese"),
        ("pt-br", "pt-BR", "Portuguese"),
    ],
)
def test_language_codes_are_normalised(raw: str, tag: str, name: str) -> None:
    p, problems = parse(display=f"Someone [{raw}]")
    assert (p.language.tag, p.language.name, p.language_source) == (tag, name, "display")
    assert problems == []


@pytest.mark.parametrize(
    "garbage",
    ["xx-garbage", "blorptastic", "zz", "123", "", "   ", "e" * 500, "[[[", "q1"],
)
def test_unknown_language_in_display_falls_back_with_a_problem(garbage: str) -> None:
    p, problems = parse(display=f"Zed [{garbage}]", descriptions=[json.dumps({"lang": garbage})])
    assert p.language == EN and p.language_source == "default"
    assert problems, "an unusable language must be reported"
    if garbage.strip() and len(garbage) <= 40 and "[" not in garbage:
        assert {pr.source for pr in problems} == {"description", "display"}
    assert all(pr.message for pr in problems)


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        42,
        "not json",
        "{broken",
        [1, 2],
        {"lang": 5},
        {"lang": None},
        {"lang": ["es"]},
        {"name": {"x": 1}},
        {"language": "tlh-Piqd-XX-x-extra-very-long-and-odd"},
        True,
        3.5,
        {"lang": "es", "name": "\x00\x01" * 300},
    ],
)
@pytest.mark.parametrize(
    "description",
    [
        None,
        17,
        "",
        "{",
        "[]",
        '{"lang": {"x": 1}}',
        '{"lang":"zz-ZZ-999"}',
        "x" * 10_000,
        '{"for": true}',
        "null",
    ],
)
def test_garbage_never_raises(metadata: object, description: object) -> None:
    p, problems = parse_participant(
        "id-1", display=b"bytes-not-str", metadata=metadata, descriptions=[description], default_language=EN
    )
    assert p.id == "id-1" and p.language.tag in ("en", "es")
    assert len(p.name) <= 200 and p.name.isprintable()
    assert isinstance(problems, list)


def test_problems_name_the_bad_value_for_reporting_once() -> None:
    _, problems = parse(metadata={"lang": "xx-nope"})
    assert [(pr.source, "xx-nope" in pr.message) for pr in problems] == [("metadata", True)]
    _, again = parse(metadata={"lang": "xx-nope"})
    assert [pr.key for pr in again] == [pr.key for pr in problems]  # same key: callers log it once


def test_interpreter_feeds_are_recognised() -> None:
    p, _ = parse(
        descriptions=[interpreter_description(42, parse_language("es"))], display="Interpreter -> Bea (es)"
    )
    assert p.is_interpreter and p.for_participant == 42
    p, _ = parse(display="Interpreter -> Bea (es-MX)")
    assert p.is_interpreter and p.for_participant is None
    p, _ = parse(display="Interpreter [bot]")
    assert p.is_interpreter
    p, _ = parse(display="Bea (es)", descriptions=['{"role":"listener","for":3}'])
    assert not p.is_interpreter and p.for_participant is None


def test_labels_round_trip() -> None:
    es = parse_language("es")
    listener, _ = parse(display=participant_display("Beatriz", es))
    assert interpreter_display("Interpreter", listener, es) == "Interpreter -> Beatriz (es)"
    assert json.loads(interpreter_description(7, es)) == {"role": "interpreter", "for": 7, "lang": "es"}
    p, _ = parse(descriptions=[participant_description("Beatriz", "es")])
    assert (p.name, p.language.tag) == ("Beatriz", "es")


def test_clean_text_and_description_parsing() -> None:
    assert clean_text("  Bea\n\tTriz  ") == "Bea Triz"
    assert clean_text(5) is None and clean_text("") is None
    assert parse_description('{"lang":"es"}') == {"lang": "es"}
    assert parse_description("Microphone (USB)") is None
    assert parse_description('["es"]') is None


# --- VideoRoom event parsing -------------------------------------------------------------------------


def test_room_events_are_typed() -> None:
    events = videoroom.parse_room_event(
        {
            "videoroom": "event",
            "room": 1234,
            "publishers": [
                {
                    "id": 5,
                    "display": "Bea [es]",
                    "streams": [
                        {"type": "audio", "mid": "0", "codec": "opus", "description": '{"lang":"es"}'},
                        {"type": "data", "mid": "1"},
                    ],
                },
                {"id": 6, "dummy": True},
                "junk",
                {"display": "no id"},
            ],
        }
    )
    assert len(events) == 1 and isinstance(events[0], videoroom.PublishersAnnounced)
    (pub,) = events[0].publishers
    assert (
        pub.id == 5 and [s.mid for s in pub.audio_streams] == ["0"] and pub.descriptions == ('{"lang":"es"}',)
    )
    assert videoroom.parse_room_event({"videoroom": "event", "leaving": 5}) == [
        videoroom.ParticipantLeaving(5)
    ]
    assert videoroom.parse_room_event({"videoroom": "event", "leaving": "ok"}) == []
    assert videoroom.parse_room_event({"videoroom": "event", "unpublished": "abc"}) == [
        videoroom.FeedUnpublished("abc")
    ]
    assert videoroom.parse_room_event({"videoroom": "event", "id": 5, "display": "Bea [de]"}) == [
        videoroom.DisplayChanged(5, "Bea [de]")
    ]
    assert videoroom.parse_room_event({"videoroom": "event", "joining": {"id": 9, "display": "X"}}) == [
        videoroom.AttendeeJoined(9, "X")
    ]
    assert videoroom.parse_room_event({"videoroom": "destroyed", "room": 1}) == [videoroom.RoomDestroyed(1)]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"videoroom": 5},
        {"videoroom": "event", "publishers": "x"},
        {"videoroom": "event", "publishers": [None]},
        {"videoroom": "event", "leaving": True},
        {"videoroom": "event", "leaving": None},
        {"videoroom": "event", "joining": 3},
        {
            "videoroom": "event",
            "publishers": [{"id": 1, "streams": [{"mid": None}, 7, {"type": "audio", "mid": 0}]}],
        },
        {"videoroom": "joined"},
        {"videoroom": "talking", "id": 1},
    ],
)
def test_odd_room_events_never_raise(data: dict[str, Any]) -> None:
    for event in videoroom.parse_room_event(data):
        assert event is not None
