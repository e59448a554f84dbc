"""The demo's pure parts: who says what, what the other should hear, verdicts and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from translator_bot.demo.network import first_global_ipv4, wanted_mode
from translator_bot.demo.observe import final_caption, since
from translator_bot.demo.report import TurnResult, summarise, summary_text, write_summary
from translator_bot.demo.runner import failure_evidence
from translator_bot.demo.script import Person, ScriptError, Turn, people_for, plan_turns
from translator_bot.fixtures import load_manifest
from translator_bot.testbed.participant import Recording

RECORDED = ["de", "en", "es"]


def test_people_are_named_by_language() -> None:
    assert people_for(["en", "es"], RECORDED) == (Person("Ana", "en"), Person("Beatriz", "es"))
    assert people_for([" DE", "en "], RECORDED) == (Person("Dieter", "de"), Person("Ana", "en"))


@pytest.mark.parametrize(
    ("languages", "message"),
    [
        (["en"], "exactly two languages"),
        (["en", "es", "de"], "exactly two languages"),
        (["en", "fr"], "no recordings in 'fr'.*de, en, es"),
        (["es", "es"], "both people speak 'es'"),
    ],
)
def test_bad_languages_say_what_is_possible(languages: list[str], message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        people_for(languages, RECORDED)


def test_turns_alternate_and_expect_the_translation_for_the_listener() -> None:
    ana, bea = people_for(["en", "es"], RECORDED)
    plan = plan_turns((ana, bea), load_manifest(), 6)
    assert [t.speaker.name for t in plan] == ["Ana", "Beatriz"] * 3
    assert [t.utterance_id for t in plan] == ["u1-en", "u2-es", "u3-en", "u4-es", "u1-en", "u2-es"]
    assert [t.expected_id for t in plan] == ["u1-es", "u2-en", "u3-es", "u4-en", "u1-es", "u2-en"]
    assert all(t.listener != t.speaker for t in plan)
    assert plan[0].expected_text.startswith("Buenos días")


def test_passthrough_expects_the_sentence_unchanged() -> None:
    plan = plan_turns(people_for(["en", "de"], RECORDED), load_manifest(), 2, translated=False)
    assert [(t.utterance_id, t.expected_id) for t in plan] == [("u1-en", "u1-en"), ("u2-de", "u2-de")]


def test_zero_turns_is_an_error() -> None:
    with pytest.raises(ScriptError, match="at least 1"):
        plan_turns(people_for(["en", "es"], RECORDED), load_manifest(), 0)


def _turn() -> Turn:
    return plan_turns(people_for(["en", "es"], RECORDED), load_manifest(), 1)[0]


def _result(**changes: object) -> TurnResult:
    values: dict[str, object] = {
        "turn": _turn(),
        "spoken_ms": 2400,
        "heard_id": "u1-es",
        "heard_ms": 2600,
        "latency_ms": 800,
        "caption": "Buenos días, gracias a todos por acompañarnos hoy.",
        "leaked_ms": 0,
        "recognised": True,
    }
    values.update(changes)
    return TurnResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "delivered", "verdict"),
    [
        ({}, True, "ok (u1-es)"),
        ({"heard_id": "u2-es"}, False, "expected u1-es, heard u2-es"),
        ({"heard_id": None}, False, "heard unrecognised speech"),
        ({"heard_id": None, "heard_ms": 0, "latency_ms": None}, False, "Beatriz heard nothing"),
        ({"leaked_ms": 400}, False, "Ana heard 400 ms of their own turn"),
        ({"leaked_ms": 40}, True, "ok"),
        ({"recognised": False, "heard_id": None}, True, "ok"),
        ({"recognised": False, "heard_id": None, "caption": None}, False, "no caption"),
    ],
)
def test_verdicts(changes: dict[str, object], delivered: bool, verdict: str) -> None:
    result = _result(**changes)
    assert result.delivered is delivered
    assert verdict in result.verdict
    assert result.verdict.startswith("ok") is delivered


def test_summary_passes_only_when_everything_arrived_and_the_bot_left_cleanly(tmp_path: Path) -> None:
    good = [_result(latency_ms=700), _result(latency_ms=900), _result(latency_ms=800)]
    summary = summarise(good, context={"engine": "translate"}, bot_exit_code=0)
    assert (summary["result"], summary["delivered"], summary["turns"]) == ("ok", 3, 3)
    assert summary["latency_ms"] == {"p50": 800, "max": 900}
    assert summary["engine"] == "translate"
    assert summarise(good, context={}, bot_exit_code=1)["result"] == "failed"
    one_lost = summarise([*good, _result(heard_ms=0, heard_id=None)], context={}, bot_exit_code=0)
    assert (one_lost["result"], one_lost["delivered"], one_lost["turns"]) == ("failed", 3, 4)
    assert one_lost["latency_ms"]["max"] == 900  # undelivered turns do not count

    written = write_summary(tmp_path, one_lost)
    assert json.loads(written[0].read_text(encoding="utf-8")) == one_lost
    text = written[1].read_text(encoding="utf-8")
    assert text == summary_text(one_lost)
    assert "FAILED: 3/4 utterances delivered" in text and "Beatriz heard nothing" in text


def test_first_global_ipv4_skips_loopback_and_link_local() -> None:
    output = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "2: t0    inet 127.0.0.2/32 scope global t0\n"
        "3: eth1  inet 169.254.3.4/16 scope link eth1\n"
        "4: eth0  inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n"
    )
    assert first_global_ipv4(output) == "192.0.2.2"
    assert first_global_ipv4("1: lo    inet 127.0.0.1/8 scope host lo\n") is None
    assert first_global_ipv4("garbage inet not-an-address\n") is None


def test_network_mode_keeps_the_fake_private_and_gives_the_real_api_the_internet() -> None:
    assert wanted_mode("auto", needs_internet=False) == "private"
    assert wanted_mode("auto", needs_internet=True) == "host"
    assert wanted_mode("private", needs_internet=True) == "private"
    assert wanted_mode("host", needs_internet=False) == "host"


def test_since_copies_the_frames_that_arrived_from_a_time() -> None:
    import numpy as np

    rec = Recording()
    for i in range(5):
        rec.chunks.append(np.full(960, i, dtype=np.int16))
        rec.arrivals.append(10.0 + i * 0.02)
    tail = since(rec, 10.05)
    assert [int(c[0]) for c in tail.chunks] == [3, 4]
    tail.chunks.clear()
    assert rec.frames == 5


def test_final_caption_takes_the_last_final_translation_after_the_turn_began() -> None:
    def caption(text: str, final: bool) -> str:
        return json.dumps({"type": "caption", "translation": text, "final": final})

    messages = [
        (1.0, caption("old", True)),
        (2.0, caption("Hola", False)),
        (2.5, "{not json"),
        (3.0, caption(" Hola, ¿qué tal? ", True)),
        (3.5, json.dumps({"type": "other", "translation": "x", "final": True})),
    ]
    assert final_caption(messages, 1.5) == "Hola, ¿qué tal?"
    assert final_caption(messages, 3.1) is None


def test_a_failed_run_prints_where_the_utterance_was_lost(tmp_path: Path) -> None:
    (tmp_path / "model.log").write_text(
        "10:00:01 INFO    translator_bot.fake.server: session s1 opened on /v1/realtime/translations\n"
        "10:00:05 INFO    translator_bot.fake.translation_session: session s1 heard None (score 0.626)\n"
        "10:00:09 INFO    translator_bot.fake.translation_session: session s2 heard u2-es (score 0.038)\n",
        encoding="utf-8",
    )
    (tmp_path / "bot.log").write_text(
        "10:00:00 INFO    aioice.ice: Connection(2) Check CandidatePair State.FROZEN -> State.WAITING\n"
        "10:00:01 INFO    translator_bot.interpreter.meeting: first audio from participant 7 (Ana)\n"
        "10:00:02 WARNING translator_bot.playout: dropped 40 ms\n",
        encoding="utf-8",
    )
    evidence = failure_evidence(tmp_path)
    assert evidence[0] == "from model.log (2 relevant lines, the last 2):"
    assert "heard None" in evidence[1] and "heard u2-es" in evidence[2]
    assert evidence[3] == "from bot.log (2 relevant lines, the last 2):"
    assert "first audio from participant 7" in evidence[4] and "dropped 40 ms" in evidence[5]
    assert len(evidence) == 6  # the ICE check chatter is left out


def test_failure_evidence_is_bounded_and_tolerates_missing_logs(tmp_path: Path) -> None:
    assert failure_evidence(tmp_path) == []
    (tmp_path / "bot.log").write_text("".join(f"WARN {i}  WARNING x\n" for i in range(100)), encoding="utf-8")
    evidence = failure_evidence(tmp_path, most=5)
    assert evidence[0] == "from bot.log (100 relevant lines, the last 5):"
    assert evidence[-1].endswith("WARN 99  WARNING x") and len(evidence) == 6
