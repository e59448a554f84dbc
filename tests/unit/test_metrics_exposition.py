"""`/metrics` of the bot's real ops server, scraped over HTTP and read with prometheus_client's parsers:
Prometheus naming conventions (base units, counters in `_total`), the process/GC/platform
collectors a Job is sized from, `translator_build_info`, and what the exporter negotiates
(OpenMetrics, gzip, `name[]`), rendered off the event loop."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import translator_bot
import translator_bot.interpreter.cost  # registers the cost collector, as the bot does
from tests.unit.metric_lint import problems
from translator_bot import metrics
from translator_bot.ops import OpsServer

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def ops() -> AsyncIterator[OpsServer]:
    server = OpsServer("127.0.0.1", 0, lambda: (True, {"status": "ok"}))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def scrape(server: OpsServer, query: str = "", **headers: str) -> tuple[str, str, str]:
    """Body, Content-Type and Content-Encoding of one scrape."""
    url = f"http://127.0.0.1:{server.port}/metrics{query}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        encoding = reply.headers.get("Content-Encoding", "")
        return await reply.text(), reply.headers["Content-Type"], encoding


def test_the_lint_catches_what_promtool_would() -> None:
    bad = "\n".join(
        [
            "# HELP app_dropped_ms_total Dropped audio",
            "# TYPE app_dropped_ms_total counter",
            "app_dropped_ms_total 3.0",
            "# HELP app_frames Frames",
            "# TYPE app_frames counter",
            "app_frames 1.0",
            "# HELP app_lanes_total Lanes",
            "# TYPE app_lanes_total gauge",
            "app_lanes_total 2.0",
            "# HELP appLag_seconds ",
            "# TYPE appLag_seconds gauge",
            'appLag_seconds{le="1"} 0.5',
            "",
        ]
    )
    assert problems(bad) == [
        "appLag_seconds: label 'le' is reserved for histograms",
        "appLag_seconds: no help text",
        "appLag_seconds: not lower snake case",
        "app_dropped_ms_total: unit 'ms' is not a base unit (seconds, bytes, ratio)",
        "app_frames: a counter whose name does not end in _total",
        "app_lanes_total: a gauge named like a counter (_total)",
    ]


async def test_a_scrape_follows_the_prometheus_naming_conventions(ops: OpsServer) -> None:
    # Labelled series appear once something is counted under a label.
    metrics.PLAYOUT_DROPPED_SECONDS.labels(reason="lag").inc(0)
    metrics.ENGINE_AUDIO_DROPPED_SECONDS.labels(engine="realtime").inc(0)
    body, content_type, _ = await scrape(ops)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    assert problems(body) == []
    families = {f.name: f for f in text_string_to_metric_families(body)}
    samples = {s.name for f in families.values() for s in f.samples}
    assert not [name for name in samples if "_ms" in name], sorted(samples)
    assert "translator_playout_dropped_seconds_total" in samples
    assert "translator_engine_audio_dropped_seconds_total" in samples
    counters = [f for f in families.values() if f.type == "counter"]
    assert len(counters) > 15
    for family in counters:
        allowed = (f"{family.name}_total", f"{family.name}_created")
        assert all(s.name in allowed for s in family.samples), family
    # What the Job's resources are sized from, and the cost series.
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_gc_objects_collected_total",
        "python_gc_collections_total",
        "python_info",
        "translator_meeting_estimated_cost_usd_total",
    ):
        assert name in samples, name
    assert families["process_resident_memory_bytes"].samples[0].value > 10 * 2**20
    assert families["translator_estimated_cost_usd"].type == "counter"


async def test_build_info_carries_the_package_version(ops: OpsServer) -> None:
    body, _, _ = await scrape(ops)
    (info,) = [f for f in text_string_to_metric_families(body) if f.name == "translator_build_info"]
    assert [(s.name, s.labels, s.value) for s in info.samples] == [
        ("translator_build_info", {"version": translator_bot.__version__}, 1.0)
    ]
    assert translator_bot.__version__ == metrics.package_version() != "0.0.0+unknown"


async def test_openmetrics_when_the_scraper_asks_for_it(ops: OpsServer) -> None:
    body, content_type, _ = await scrape(ops, Accept=f"{OPENMETRICS},text/plain;version=0.0.4;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0"), content_type
    assert body.endswith("# EOF\n")
    # The OpenMetrics parser is strict: it raises on anything the format does not allow.
    families = {f.name: f for f in openmetrics_families(body)}  # type: ignore[no-untyped-call]
    assert families["translator_build"].type == "info"  # OpenMetrics names info families without _info
    assert families["translator_frames_in"].type == "counter"
    assert families["process_cpu_seconds"].type == "counter"
    assert families["translator_playout_queue_lag_seconds"].type == "histogram"


async def test_the_exporter_compresses_and_filters(ops: OpsServer) -> None:
    _, _, encoding = await scrape(ops, **{"Accept-Encoding": "gzip"})
    assert encoding == "gzip"
    body, _, _ = await scrape(ops, "?name[]=translator_build_info&name[]=process_cpu_seconds_total")
    names = {f.name for f in text_string_to_metric_families(body)}
    assert names == {"translator_build_info", "process_cpu_seconds"}, body


class _ThreadSpy(Collector):
    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def describe(self) -> list[Metric]:
        return []  # so registering does not collect (on this thread)

    def collect(self) -> Iterator[Metric]:
        self.threads.append(threading.current_thread())
        yield GaugeMetricFamily("translator_test_spy", "Which thread renders a scrape", value=1)


async def test_metrics_are_rendered_off_the_event_loop(ops: OpsServer) -> None:
    spy = _ThreadSpy()
    metrics.REGISTRY.register(spy)
    try:
        body, _, _ = await scrape(ops)
    finally:
        metrics.REGISTRY.unregister(spy)
    assert "translator_test_spy 1.0" in body
    assert spy.threads and threading.current_thread() not in spy.threads


async def test_every_series_the_docs_name_is_served(ops: OpsServer) -> None:
    body, _, _ = await scrape(ops)
    served = {s.name for f in text_string_to_metric_families(body) for s in f.samples}
    served |= set(re.findall(r"^# TYPE (\S+) ", body, re.MULTILINE))  # labelled series not yet counted
    for doc in ("README.md", "docker/k8s/README.md"):
        named = set(
            re.findall(r"\b((?:translator|process|python)_[a-z0-9_]*[a-z0-9])\b", (ROOT / doc).read_text())
        )
        named = {n for n in named if not n.startswith("translator_bot")}  # the package, not a series
        missing = {n for n in named if n not in served and f"{n}_total" not in served}
        assert not missing, f"{doc} names series that /metrics does not serve: {sorted(missing)}"
