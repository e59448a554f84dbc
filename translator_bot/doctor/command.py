"""Run every check, print the report, and turn it into an exit code."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from translator_bot.doctor.checks import system_checks
from translator_bot.doctor.configuration import read_settings, settings_checks
from translator_bot.doctor.model import Report, Target
from translator_bot.doctor.probe import Probe, system_probe
from translator_bot.doctor.report import render_json, render_text
from translator_bot.errors import ExitCode
from translator_bot.redact import Redactor
from translator_bot.settings_flags import flag_overrides


def build_report(
    args: argparse.Namespace, probe: Probe, environ: Mapping[str, str]
) -> tuple[Report, Redactor]:
    target: Target = args.target
    loaded = read_settings(flag_overrides(args), args.env_file, environ)
    checks = [*system_checks(probe), *settings_checks(loaded)]
    if args.online and loaded.settings is not None:
        from translator_bot.doctor.online import online_checks

        checks += asyncio.run(online_checks(loaded.settings))
    report = Report(target, checks, loaded.rows, loaded.error)
    return report, Redactor(loaded.secrets)


def execute(
    args: argparse.Namespace,
    probe: Probe | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    out = sys.stdout if out is None else out
    if args.env_file is not None and not args.env_file.is_file():
        print(f"translator-bot doctor: --env-file: no such file: {args.env_file}", file=sys.stderr)
        return int(ExitCode.USAGE)
    report, redact = build_report(args, probe or system_probe(), os.environ if environ is None else environ)
    text = render_json(report) if args.json else render_text(report)
    out.write(redact(text))
    out.flush()
    return report.exit_code
