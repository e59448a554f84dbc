"""The interpreter feed's label, written by the bot and read by clients: the Python side (room/metadata.py)
and the meeting page's (web/static/labels.js, run under Node), held to the same cases."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from translator_bot.languages import parse_language
from translator_bot.room.metadata import (
    Participant,
    feed_is_for,
    interpreter_description,
    interpreter_display,
    listener_ids,
    parse_participant,
)

JS_TESTS = Path(__file__).parents[1] / "js"
CASES = json.loads((JS_TESTS / "feed_label_cases.json").read_text())
ES = parse_language("es")


def person(pid: int, name: str) -> Participant:
    return Participant(pid, f"{name} [es]", name, ES, "display")


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_the_bot_reads_each_label_like_the_page(case: dict[str, object]) -> None:
    label, pid = case["label"], case["id"]
    assert isinstance(label, dict) and isinstance(pid, int)
    assert feed_is_for(label, pid) is case["for_me"]


def test_each_output_mode_writes_a_label_its_listeners_find() -> None:
    bea, carlos = person(3, "Bea"), person(5, "Carlos")
    language_feed = json.loads(interpreter_description(listener_ids((bea, carlos)), ES))
    assert language_feed == {"role": "interpreter", "for": [3, 5], "lang": "es"}
    assert (
        feed_is_for(language_feed, 3) and feed_is_for(language_feed, 5) and not feed_is_for(language_feed, 4)
    )
    assert json.loads(interpreter_description(listener_ids(bea), ES))["for"] == 3
    assert json.loads(interpreter_description(listener_ids(None), ES))["for"] is None
    assert interpreter_display("Interpreter", (bea, carlos), ES) == "Interpreter -> Spanish, 2 listeners (es)"
    assert interpreter_display("Interpreter", bea, ES) == "Interpreter -> Bea (es)"


def test_a_language_feed_is_an_interpreter_to_other_bots_too() -> None:
    """Another interpreter in the room must not translate our per-language feed as a person."""
    description = interpreter_description([3, 5], ES)
    feed, _ = parse_participant(
        99,
        display="Interpreter -> Spanish, 2 listeners (es)",
        descriptions=[description],
        default_language=ES,
    )
    assert feed.is_interpreter


def test_the_pages_label_reader_passes_its_own_tests_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the meeting page's label reader (labels.js) cannot be tested")
    result = subprocess.run(
        [node, "--test", str(JS_TESTS / "labels.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 6" in result.stdout, result.stdout[-2000:]
