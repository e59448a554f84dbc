"""What a meeting costs, estimated from the usage each lane's model session reports and configurable prices.

Two pricing schemes, as OpenAI bills them:
- `translate` (gpt-realtime-translate) is billed by the duration of the audio streamed to it. The
  endpoint needs audio without gaps (silence included), so this is about the lane's lifetime.
- `realtime` models are billed per token, by modality: audio input (uncached and cached), text input
  (instructions and text context; uncached and cached) and audio/text output, from the `usage` of
  each `response.done` (counted once per response by the engine).
`passthrough` costs nothing. The input transcription the realtime engine asks for (captions) is billed
by the transcription model separately and is not included.

The defaults (settings `price_*`) are OpenAI's list prices; see the README. This is an estimate for
people and dashboards, not an invoice: the provider's usage page is the reference.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.engine.base import EngineState, Usage
from translator_bot.metrics import REGISTRY
from translator_bot.settings import Settings

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """USD. Token prices are per million tokens; the translate endpoint's per minute of audio."""

    translate_per_minute: float = 0.034
    audio_input_per_million: float = 32.0
    audio_cached_per_million: float = 0.40
    audio_output_per_million: float = 64.0
    text_input_per_million: float = 4.0
    text_cached_per_million: float = 0.40
    text_output_per_million: float = 16.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        return cls(
            translate_per_minute=settings.price_translate_per_minute,
            audio_input_per_million=settings.price_audio_input_per_million,
            audio_cached_per_million=settings.price_audio_cached_per_million,
            audio_output_per_million=settings.price_audio_output_per_million,
            text_input_per_million=settings.price_text_input_per_million,
            text_cached_per_million=settings.price_text_cached_per_million,
            text_output_per_million=settings.price_text_output_per_million,
        )


def token_cost(usage: Usage, prices: Prices) -> float:
    """USD for one or more responses' tokens. Cached tokens are part of the input tokens and are
    billed at the cached price instead; whatever is not audio is text."""
    audio_in = min(usage.input_audio_tokens, usage.input_tokens)
    text_in = usage.input_tokens - audio_in
    cached_audio = min(usage.cached_audio_tokens, audio_in, usage.cached_tokens)
    cached_text = min(usage.cached_tokens - cached_audio, text_in)
    audio_out = min(usage.output_audio_tokens, usage.output_tokens)
    text_out = usage.output_tokens - audio_out
    total = (
        (audio_in - cached_audio) * prices.audio_input_per_million
        + cached_audio * prices.audio_cached_per_million
        + (text_in - cached_text) * prices.text_input_per_million
        + cached_text * prices.text_cached_per_million
        + audio_out * prices.audio_output_per_million
        + text_out * prices.text_output_per_million
    )
    return total / PER_MILLION


def duration_cost(audio_seconds: float, prices: Prices) -> float:
    return audio_seconds / 60.0 * prices.translate_per_minute


@dataclass(frozen=True)
class LaneCost:
    lane: str
    engine: str
    usage: Usage
    audio_seconds: float  # input audio streamed to the model, replays after drops included
    usd: float


def lane_cost(lane: str, engine: str, usage: Usage, audio_seconds: float, prices: Prices) -> LaneCost:
    if engine == "translate":
        usd = duration_cost(audio_seconds, prices)
    elif engine == "passthrough":
        usd = 0.0
    else:
        usd = token_cost(usage, prices)
    return LaneCost(lane, engine, usage, audio_seconds, usd)


@dataclass(frozen=True)
class MeetingCost:
    lanes: tuple[LaneCost, ...]

    @property
    def usd(self) -> float:
        return sum(lane.usd for lane in self.lanes)


def format_usd(usd: float) -> str:
    """Cents matter for a meeting: four decimals below a dollar, two above."""
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def describe_lane(lane: LaneCost, name: str | None = None) -> str:
    if lane.engine == "translate":
        what = f"{lane.audio_seconds / 60:.1f} min of audio"
    elif lane.engine == "passthrough":
        what = "no model"
    else:
        u = lane.usage
        what = (
            f"{u.input_tokens:,} tokens in ({u.input_audio_tokens:,} audio, {u.cached_tokens:,} cached), "
            f"{u.output_tokens:,} out ({u.output_audio_tokens:,} audio)"
        )
    shown = f"{name} [{lane.lane}]" if name else lane.lane
    return f"{shown} ({lane.engine}): {format_usd(lane.usd)}, {what}"


def cost_lines(cost: MeetingCost, names: Mapping[str, str] | None = None) -> list[str]:
    """The cost section of the transcript: per lane (named for people by `names`) and in total."""
    lines = [f"Estimated model cost: {format_usd(cost.usd)} (at the TRANSLATOR_PRICE_* prices)"]
    lines += [
        f"  {describe_lane(lane, (names or {}).get(lane.lane))}"
        for lane in sorted(cost.lanes, key=lambda c: c.lane)
    ]
    return lines


def cost_summary(meeting_id: str, cost: MeetingCost) -> str:
    """One log line for when the bot leaves."""
    lanes = ", ".join(f"{c.lane} {format_usd(c.usd)}" for c in sorted(cost.lanes, key=lambda c: c.lane))
    return f"estimated cost of meeting {meeting_id}: {format_usd(cost.usd)} ({lanes or 'no lanes'})"


class UsageSource(Protocol):
    """What the meter reads from an engine session (EngineSession; its `engine_name` if it has one)."""

    usage_total: Usage
    audio_sent_samples: int
    state: EngineState


class CostMeter:
    """The meeting's running cost: every model session a lane has had (restarts included)."""

    def __init__(self, prices: Prices, default_engine: str) -> None:
        self.prices = prices
        self._default_engine = default_engine
        self._live: dict[str, UsageSource] = {}
        self._ended: dict[str, tuple[str, Usage, int]] = {}  # lane -> sessions that were replaced
        _METERS.add(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> CostMeter:
        return cls(Prices.from_settings(settings), settings.effective_engine)

    def track(self, lane: str, session: UsageSource) -> None:
        """`session` now serves `lane`; a session it replaces keeps counting towards the lane."""
        previous = self._live.pop(lane, None)
        if previous is not None:
            engine, usage, samples = self._ended.get(lane, (self._engine(previous), Usage(), 0))
            self._ended[lane] = (engine, usage + previous.usage_total, samples + previous.audio_sent_samples)
        self._live[lane] = session

    def _engine(self, session: UsageSource) -> str:
        return getattr(session, "engine_name", "") or self._default_engine

    def report(self) -> MeetingCost:
        lanes = []
        for lane in sorted(self._live.keys() | self._ended.keys()):
            engine, usage, samples = self._ended.get(lane, ("", Usage(), 0))
            live = self._live.get(lane)
            if live is not None:
                engine = self._engine(live)
                usage, samples = usage + live.usage_total, samples + live.audio_sent_samples
            lanes.append(lane_cost(lane, engine, usage, samples / MODEL_RATE, self.prices))
        return MeetingCost(tuple(lanes))

    def open_lanes(self) -> set[str]:
        return {lane for lane, s in self._live.items() if s.state is not EngineState.CLOSED}


_METERS: weakref.WeakSet[CostMeter] = weakref.WeakSet()


class _CostCollector(Collector):
    """Read at scrape time from the sessions themselves, so /metrics is exact without a refresh task.
    Closed lanes leave the per-lane series (like the token series) but stay in the meeting's total."""

    def collect(self) -> Iterable[Metric]:
        per_lane = CounterMetricFamily(
            "translator_estimated_cost_usd",
            "Estimated model cost per open lane in USD, from TRANSLATOR_PRICE_* (list prices by default)",
            labels=["lane"],
        )
        meeting = CounterMetricFamily(
            "translator_meeting_estimated_cost_usd",
            "Estimated model cost of the whole meeting in USD, closed lanes included",
        )
        total = 0.0
        for meter in list(_METERS):
            report, open_lanes = meter.report(), meter.open_lanes()
            total += report.usd
            for lane in report.lanes:
                if lane.lane in open_lanes:
                    per_lane.add_metric([lane.lane], lane.usd)
        meeting.add_metric([], total)
        return [per_lane, meeting]


REGISTRY.register(_CostCollector())
