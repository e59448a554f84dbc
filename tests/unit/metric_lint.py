"""Prometheus naming rules for a scraped exposition, the ones `promtool check metrics` applies
(client_golang's promlint), checked with prometheus_client's own parser since promtool is a Go binary.

`problems(text)` returns one line per problem, empty when the exposition follows the conventions.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")  # snake case; colons are for recording rules
# Units other than the base ones (seconds, bytes, ratios) and their abbreviations, as name tokens.
_NON_BASE_UNITS = {
    "ms", "msec", "msecs", "millis", "milliseconds", "us", "usec", "micros", "microseconds",
    "ns", "nsec", "nanos", "nanoseconds", "sec", "secs", "min", "mins", "minutes", "hr", "hrs",
    "hours", "days", "weeks", "kb", "kib", "kilobytes", "mb", "mib", "megabytes", "gb", "gib",
    "gigabytes", "bits", "percent", "pct", "fahrenheit",
}  # fmt: skip
_TYPE_WORDS = {"counter", "gauge", "histogram", "summary"}
_RESERVED_SUFFIXES = ("_bucket", "_count", "_sum")
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
_HELP_LINE = re.compile(r"^# HELP (\S+) (.*)$", re.MULTILINE)


def _name_problems(name: str) -> list[str]:
    found = []
    if not _NAME.match(name):
        found.append(f"{name}: not lower snake case")
    tokens = name.split("_")
    for unit in sorted(_NON_BASE_UNITS & set(tokens)):
        found.append(f"{name}: unit {unit!r} is not a base unit (seconds, bytes, ratio)")
    for word in sorted(_TYPE_WORDS & set(tokens)):
        found.append(f"{name}: the metric type {word!r} in the name")
    return found


def problems(text: str) -> list[str]:
    """Problems of a Prometheus text (0.0.4) exposition."""
    found: list[str] = []
    helps = dict(_HELP_LINE.findall(text))
    for name, kind in _TYPE_LINE.findall(text):
        found += _name_problems(name)
        if not helps.get(name, "").strip():
            found.append(f"{name}: no help text")
        if kind == "counter" and not name.endswith("_total"):
            found.append(f"{name}: a counter whose name does not end in _total")
        if kind != "counter" and name.endswith("_total"):
            found.append(f"{name}: a {kind} named like a counter (_total)")
        if kind not in ("histogram", "summary") and name.endswith(_RESERVED_SUFFIXES):
            found.append(f"{name}: a {kind} with a histogram/summary suffix")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "le" in sample.labels and family.type != "histogram":
                found.append(f"{sample.name}: label 'le' is reserved for histograms")
            if "quantile" in sample.labels and family.type != "summary":
                found.append(f"{sample.name}: label 'quantile' is reserved for summaries")
    return sorted(set(found))
