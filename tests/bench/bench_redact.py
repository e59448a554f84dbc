"""What redaction costs: one log line and one /metrics body, with a secret in every secret setting.

Nine secrets (six secret settings, three URL passwords) give the redactor a couple of hundred forms
(repr, JSON and percent-encoded variants). The baseline in the same run is a plain alternation of
the same forms, the obvious way to match them all in one pass; the redactor builds them as a trie.

Run: .venv/bin/python -m tests.bench.bench_redact [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable

from translator_bot.redact import Redactor

SECRETS = [
    "sk-proj-Zq7XkW3vP9mN2bL8cR4tY6Zq7XkW3vP9mN2bL8cR4tY6",
    "0d5f9a1b2c4d5e6f8a9b0d5f9a1b2c4d",
    "janus-apisecret-Hq2Wm8'\"",
    "janus-token-Xy7\\Pq",
    "videoroom-admin-Tr5é",
    "turn-password-Lp5Ns3",
    "base%40url-pass",
    "janus%2Furl-pass",
    "web-janus-url-pass",
]
LOG_LINE = (
    "2026-11-30 19:32:35,420 INFO    translator_bot.room.session: participant 42 joined: "
    "Beatriz (es, from display), receiving feed 7"
)
# A /metrics body with many lanes: ~57 KB of histogram buckets.
METRICS = 'translator_playout_queue_lag_seconds_bucket{lane="p1->es",le="0.1"} 12.0\n' * 800


def per_call_us(redact: Callable[[str], str], text: str, calls: int, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            redact(text)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    redactor = Redactor(SECRETS)
    forms = sorted(redactor._forms, key=len, reverse=True)
    alternation = re.compile("|".join(map(re.escape, forms)))

    def baseline(text: str) -> str:
        return alternation.sub("***", text)

    print(f"{len(SECRETS)} secrets, {len(forms)} forms; median of {args.runs} runs")
    for name, text, calls in (("log line", LOG_LINE, 20000), ("/metrics body", METRICS, 50)):
        base = per_call_us(baseline, text, calls, args.runs)
        ours = per_call_us(redactor, text, calls, args.runs)
        print(f"{name} ({len(text)} chars): redactor {ours:.1f} us, plain alternation {base:.1f} us")


if __name__ == "__main__":
    main()
