"""What the demo found, turn by turn: delivered or not, how late, and the summary written at the end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from translator_bot.demo.script import Turn
from translator_bot.interpreter.cost import format_usd

# Anything the speaker's own interpreter feed plays during their turn is a routing fault; a few
# frames of comfort noise are not.
LEAK_TOLERANCE_MS = 100


@dataclass(frozen=True)
class TurnResult:
    turn: Turn
    spoken_ms: int  # length of what the speaker said
    heard_id: str | None  # recording the listener's audio matched; None: nothing matched
    heard_ms: int  # length of the speech the listener heard (0: silence)
    latency_ms: int | None  # end of the speaker's sentence -> first translated audio at the listener
    caption: str | None  # the translated caption the listener received, if any
    leaked_ms: int  # speech the speaker heard on their own interpreter feed during the turn
    recognised: bool  # True when the recordings can name what was heard (the local fake model)

    @property
    def problem(self) -> str | None:
        """Why the turn failed, or None when the right translation reached the right person."""
        if self.leaked_ms > LEAK_TOLERANCE_MS:
            return f"{self.turn.speaker.name} heard {self.leaked_ms} ms of their own turn"
        if self.heard_ms == 0:
            return f"{self.turn.listener.name} heard nothing"
        if self.recognised and self.heard_id != self.turn.expected_id:
            return f"expected {self.turn.expected_id}, heard {self.heard_id or 'unrecognised speech'}"
        # A real model speaks with its own voice, so the recordings cannot name it: speech that
        # arrived, plus a caption in the listener's language, is what delivery means then.
        if not self.recognised and not self.caption:
            return "audio arrived but no caption"
        return None

    @property
    def delivered(self) -> bool:
        return self.problem is None

    @property
    def verdict(self) -> str:
        problem = self.problem
        if problem is not None:
            return f"FAILED: {problem}"
        return f"ok ({self.heard_id})" if self.recognised else "ok"


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


def summarise(
    results: Sequence[TurnResult], *, context: dict[str, Any], bot_exit_code: int | None
) -> dict[str, Any]:
    latencies = [r.latency_ms for r in results if r.delivered and r.latency_ms is not None]
    delivered = sum(r.delivered for r in results)
    ok = delivered == len(results) and bot_exit_code == 0
    return {
        "result": "ok" if ok else "failed",
        "delivered": delivered,
        "turns": len(results),
        "bot_exit_code": bot_exit_code,
        "latency_ms": {
            "p50": _rounded(percentile(latencies, 50)),
            "max": max(latencies) if latencies else None,
        },
        **context,
        "utterances": [
            {
                "turn": r.turn.number,
                "speaker": r.turn.speaker.name,
                "speaker_language": r.turn.speaker.language,
                "said": r.turn.utterance_id,
                "text": r.turn.text,
                "listener": r.turn.listener.name,
                "listener_language": r.turn.listener.language,
                "expected": r.turn.expected_id,
                "heard": r.heard_id,
                "heard_ms": r.heard_ms,
                "caption": r.caption,
                "latency_ms": r.latency_ms,
                "leaked_ms": r.leaked_ms,
                "delivered": r.delivered,
                "verdict": r.verdict,
            }
            for r in results
        ],
    }


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def summary_text(summary: dict[str, Any]) -> str:
    lines = [
        f"translator-bot demo: {summary['result'].upper()}: "
        f"{summary['delivered']}/{summary['turns']} utterances delivered",
        f"engine {summary.get('engine')}, model {summary.get('provider')}, network {summary.get('network')}",
    ]
    latency = summary["latency_ms"]
    if latency["p50"] is not None:
        lines.append(
            f"end of speech -> first translated audio: median {latency['p50']} ms, max {latency['max']} ms"
        )
    cost = summary.get("estimated_cost_usd")
    if cost is not None:
        lanes = ", ".join(f"{lane} {format_usd(usd)}" for lane, usd in cost["lanes"].items())
        lines.append(
            f"estimated model cost at the configured prices: {format_usd(cost['total'])}"
            + (f" ({lanes})" if lanes else "")
            + (" (the local fake charges nothing)" if summary.get("provider") == "fake" else "")
        )
    lines.append(f"bot exit code: {summary['bot_exit_code']}")
    lines.append("")
    for u in summary["utterances"]:
        late = "" if u["latency_ms"] is None else f", {u['latency_ms']} ms after the sentence ended"
        lines.append(f"{u['turn']}. {u['speaker']} ({u['speaker_language']}): {u['text']}")
        heard = u["caption"] or ("(speech)" if u["heard_ms"] else "(nothing)")
        lines.append(f"   {u['listener']} heard ({u['listener_language']}): {heard}{late}  [{u['verdict']}]")
    return "\n".join(lines) + "\n"


def write_summary(directory: Path, summary: dict[str, Any]) -> list[Path]:
    as_json = directory / "summary.json"
    as_text = directory / "summary.txt"
    as_json.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    as_text.write_text(summary_text(summary), encoding="utf-8")
    return [as_json, as_text]


def cost_from_metrics(text: str) -> dict[str, Any] | None:
    """The bot's estimated cost as its /metrics said at the end of the last turn: the meeting's total
    and each open lane's; None if the bot did not report it."""
    total: float | None = None
    lanes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "translator_meeting_estimated_cost_usd_total":
                total = sample.value
            elif sample.name == "translator_estimated_cost_usd_total":
                lanes[sample.labels.get("lane", "")] = round(sample.value, 6)
    if total is None:
        return None
    return {"total": round(total, 6), "lanes": dict(sorted(lanes.items()))}
