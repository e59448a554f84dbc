"""Cost per meeting: the pricing math with realistic usage, the meter over lane restarts, /metrics,
the transcript footer, and usage as the engines really report it (the fake server)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.unit.test_engine_fake import (  # noqa: F401 (the fake fixture)
    fake,
    make,
    pcm_of,
    silence,
    speak_and_collect,
)
from translator_bot.engine.base import EngineState, Usage
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.interpreter.cost import (
    CostMeter,
    MeetingCost,
    Prices,
    cost_lines,
    cost_summary,
    duration_cost,
    format_usd,
    lane_cost,
    token_cost,
)
from translator_bot.interpreter.transcript import LaneInfo, Transcript
from translator_bot.metrics import REGISTRY
from translator_bot.settings import Settings

LIST = Prices()  # the documented defaults: gpt-realtime and gpt-realtime-translate list prices

# One response.done of a realtime session as the API reports it (input_token_details with cached
# details, output_token_details): 789 in (313 text, 476 audio; 640 cached: 256 text, 384 audio), 32 out.
RESPONSE = Usage(
    input_tokens=789,
    output_tokens=32,
    cached_tokens=640,
    input_audio_tokens=476,
    cached_audio_tokens=384,
    output_audio_tokens=23,
)


def test_token_cost_prices_each_modality_and_the_cached_part() -> None:
    # audio in 92 x $32 + cached audio 384 x $0.40 + text in 57 x $4 + cached text 256 x $0.40
    # + audio out 23 x $64 + text out 9 x $16, per million
    expected = (92 * 32 + 384 * 0.40 + 57 * 4 + 256 * 0.40 + 23 * 64 + 9 * 16) / 1e6
    assert token_cost(RESPONSE, LIST) == pytest.approx(expected) == pytest.approx(0.005044)


def test_a_realistic_hour_of_realtime_interpretation() -> None:
    # One lane, 60 min, the speaker talks half the time: 1,800 s of speech in at 10 audio tokens/s;
    # the translation as long as the speech, out at 20 audio tokens/s, ~ 2,000 text tokens of
    # transcript; each of ~600 responses re-reads ~300 instruction tokens (mostly cached).
    usage = Usage(
        input_tokens=18_000 + 600 * 300,
        input_audio_tokens=18_000,
        cached_tokens=600 * 250,
        cached_audio_tokens=0,
        output_tokens=36_000 + 2_000,
        output_audio_tokens=36_000,
    )
    cost = token_cost(usage, LIST)
    by_hand = (18_000 * 32 + 30_000 * 4 + 150_000 * 0.40 + 36_000 * 64 + 2_000 * 16) / 1e6
    assert cost == pytest.approx(by_hand) == pytest.approx(3.092)


def test_the_translate_endpoint_is_priced_by_the_minute() -> None:
    assert duration_cost(30 * 60, LIST) == pytest.approx(1.02)  # a 30-minute lane at $0.034/min
    lane = lane_cost("a->es", "translate", Usage(), 30 * 60, LIST)
    assert lane.usd == pytest.approx(1.02)
    assert lane_cost("a->es", "passthrough", RESPONSE, 600, LIST).usd == 0.0


def test_inconsistent_usage_never_counts_a_token_twice_or_below_zero() -> None:
    odd = Usage(
        input_tokens=10, output_tokens=5, cached_tokens=50, input_audio_tokens=40, output_audio_tokens=9
    )
    assert 0 < token_cost(odd, LIST) <= (10 * 32 + 5 * 64) / 1e6


def test_prices_come_from_the_settings() -> None:
    s = Settings(price_translate_per_minute=0.05, price_audio_output_per_million=20.0)
    prices = Prices.from_settings(s)
    assert prices.translate_per_minute == 0.05 and prices.audio_output_per_million == 20.0
    assert prices.text_input_per_million == LIST.text_input_per_million


@dataclass
class FakeSession:
    engine_name: str
    usage_total: Usage = field(default_factory=Usage)
    audio_sent_samples: int = 0
    state: EngineState = EngineState.CONNECTED


def test_the_meter_keeps_a_restarted_lanes_first_session_and_reports_every_lane() -> None:
    meter = CostMeter(LIST, "realtime")
    first = FakeSession("realtime", RESPONSE)
    meter.track("a->es", first)
    meter.track("b->en", FakeSession("realtime", RESPONSE + RESPONSE))
    first.state = EngineState.CLOSED
    meter.track("a->es", FakeSession("realtime", RESPONSE))  # the lane restarted: a new session
    report = meter.report()
    by_lane = {c.lane: c for c in report.lanes}
    assert by_lane["a->es"].usage == RESPONSE + RESPONSE
    assert report.usd == pytest.approx(4 * 0.005044)
    assert meter.open_lanes() == {"a->es", "b->en"}


def test_metrics_show_open_lanes_and_the_whole_meeting() -> None:
    meter = CostMeter(LIST, "translate")
    before = REGISTRY.get_sample_value("translator_meeting_estimated_cost_usd_total") or 0.0
    live = FakeSession("translate", audio_sent_samples=24_000 * 60)  # one minute streamed
    ended = FakeSession("translate", audio_sent_samples=24_000 * 120, state=EngineState.CLOSED)
    meter.track("m1:a->es", live)
    meter.track("m1:b->en", ended)
    value = REGISTRY.get_sample_value("translator_estimated_cost_usd_total", {"lane": "m1:a->es"})
    assert value == pytest.approx(0.034)
    assert REGISTRY.get_sample_value("translator_estimated_cost_usd_total", {"lane": "m1:b->en"}) is None
    total = REGISTRY.get_sample_value("translator_meeting_estimated_cost_usd_total")
    assert total is not None and total - before == pytest.approx(3 * 0.034)
    del meter


def test_footer_and_log_line() -> None:
    cost = MeetingCost(
        (
            lane_cost("a->es", "translate", Usage(), 90, LIST),
            lane_cost("b->en", "realtime", RESPONSE, 0, LIST),
        )
    )
    lines = cost_lines(cost)
    assert lines[0] == "Estimated model cost: $0.0560 (at the TRANSLATOR_PRICE_* prices)"
    assert lines[1] == "  a->es (translate): $0.0510, 1.5 min of audio"
    assert lines[2].startswith("  b->en (realtime): $0.0050, 789 tokens in (476 audio, 640 cached)")
    assert (
        cost_summary("1234", cost) == "estimated cost of meeting 1234: $0.0560 (a->es $0.0510, b->en $0.0050)"
    )
    assert format_usd(12.345) == "$12.35"
    transcript = Transcript("1234", schedule=lambda delay, callback: _Never())
    transcript.lane_opened(LaneInfo("a->es", "a", "Ana", "en", "es", ("b",)))
    text = transcript.render_text(cost)
    footer = [lines[0], "  Ana (en -> es) [a->es] (translate): $0.0510, 1.5 min of audio", lines[2]]
    assert text.endswith("\n\n" + "\n".join(footer) + "\n")  # the footer, after a blank line
    assert "Estimated" not in transcript.render_text()


class _Never:
    def cancel(self) -> None:
        pass


@pytest.mark.parametrize("engine", ["translate", "realtime"])
async def test_engines_report_what_the_estimate_needs(fake: FakeRealtimeServer, engine: str) -> None:  # noqa: F811
    session = make(fake, engine)  # type: ignore[arg-type]
    await session.start()
    speech = silence(300) + pcm_of("u2-en") + silence(4000)
    try:
        await speak_and_collect(session, speech, 1, 30)
    finally:
        await session.aclose()
    sent_s = session.audio_sent_samples / 24_000
    if engine == "translate":
        # Everything given was streamed (the endpoint bills its duration), in whole 100 ms chunks.
        assert len(speech) / 48_000 - 0.1 <= sent_s <= len(speech) / 48_000
        cost = lane_cost("a->es", engine, session.usage_total, sent_s, LIST)
        assert cost.usd == pytest.approx(sent_s / 60 * 0.034)
    else:
        usage = session.usage_total
        assert usage.input_audio_tokens > 0 and usage.output_audio_tokens > 0
        assert usage.input_tokens > usage.input_audio_tokens  # the instructions are text tokens
        assert token_cost(usage, LIST) > 0


def test_the_demo_summary_reads_the_cost_from_the_bots_metrics() -> None:
    from prometheus_client import generate_latest

    from translator_bot.demo.report import cost_from_metrics, summary_text

    meter = CostMeter(LIST, "translate")
    meter.track("demo:ana->es", FakeSession("translate", audio_sent_samples=24_000 * 30))
    cost = cost_from_metrics(generate_latest(REGISTRY).decode())
    assert cost is not None and cost["lanes"]["demo:ana->es"] == pytest.approx(0.017)
    assert cost["total"] >= 0.017
    summary = {
        "result": "ok",
        "delivered": 1,
        "turns": 1,
        "engine": "translate",
        "provider": "fake",
        "network": "private",
        "latency_ms": {"p50": None},
        "bot_exit_code": 0,
        "utterances": [],
        "estimated_cost_usd": {"total": 0.017, "lanes": {"demo:ana->es": 0.017}},
    }
    assert (
        "estimated model cost at the configured prices: $0.0170 (demo:ana->es $0.0170)"
        " (the local fake charges nothing)" in summary_text(summary)
    )
    assert cost_from_metrics("# nothing\n") is None
    del meter
