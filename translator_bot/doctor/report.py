"""The doctor's report as text for people or JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from translator_bot.doctor.model import Check, Report, Use

_SETTINGS_SECTION = "Settings"
_STATUS_WIDTH = 8
_NAME_WIDTH = 16


def uses(report: Report) -> list[Use]:
    return ["join", "demo"] if report.target == "all" else [report.target]


def _check_lines(check: Check) -> list[str]:
    line = f"  {check.status:<{_STATUS_WIDTH}} {check.name:<{_NAME_WIDTH}} {check.detail}"
    if check.status in ("missing", "invalid") and check.needed_for:
        line += f"  [needed for {' and '.join(sorted(check.needed_for))}]"
    lines = [line]
    if check.fix and check.status != "ok":
        lines.append(f"  {'':<{_STATUS_WIDTH}} {'':<{_NAME_WIDTH}} -> {check.fix}")
    return lines


def _settings_table(report: Report) -> list[str]:
    width = max((len(row.name) for row in report.settings), default=0)
    value_width = min(max((len(row.value) for row in report.settings), default=0), 48)
    return [f"  {row.name:<{width}}  {row.value:<{value_width}}  {row.source}" for row in report.settings]


def _summary(report: Report) -> list[str]:
    lines = []
    for use in uses(report):
        blocking = [c.name for c in report.checks if c.blocks(use)]
        if blocking:
            lines.append(f"{use}: not ready, fix: {', '.join(blocking)}")
        else:
            lines.append(f"{use}: ready")
    warnings = sum(1 for c in report.checks if c.status == "warn")
    if warnings:
        lines.append(f"{warnings} warning(s) above do not block anything")
    return lines


def render_text(report: Report) -> str:
    wanted = " and ".join(f"`translator-bot {use}`" for use in uses(report))
    verb = "need" if report.target == "all" else "needs"
    lines = [f"translator-bot doctor: what {wanted} {verb} on this machine"]
    sections: list[str] = []
    for check in report.checks:
        if check.section not in sections:
            sections.append(check.section)
    if _SETTINGS_SECTION not in sections and report.settings:
        sections.append(_SETTINGS_SECTION)
    for section in sections:
        lines += ["", section]
        if section == _SETTINGS_SECTION:
            lines += ["  (value, then where it comes from: flag > env > env file > default)"]
            lines += _settings_table(report)
        for check in report.checks:
            if check.section == section:
                lines += _check_lines(check)
    lines += ["", *_summary(report)]
    return "\n".join(lines) + "\n"


def _check_json(check: Check) -> dict[str, Any]:
    return {
        "section": check.section,
        "name": check.name,
        "status": check.status,
        "detail": check.detail,
        "fix": check.fix,
        "needed_for": sorted(check.needed_for),
    }


def render_json(report: Report) -> str:
    document: dict[str, Any] = {
        "for": report.target,
        "exit_code": report.exit_code,
        "ready": {use: not any(c.blocks(use) for c in report.checks) for use in uses(report)},
        "checks": [_check_json(check) for check in report.checks],
        "settings": {
            "valid": report.settings_error is None,
            "error": report.settings_error,
            "values": [
                {"name": row.name, "value": row.value, "source": row.source, "secret": row.secret}
                for row in report.settings
            ],
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
