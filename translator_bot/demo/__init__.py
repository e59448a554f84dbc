"""`translator-bot demo`: a whole interpreted meeting on this machine, no account needed.

Imports stay inside `run()`: the CLI builds every subcommand's parser on each start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Literal

from translator_bot.redact import redact, register_secrets
from translator_bot.settings import given_secret_values

DESCRIPTION = """\
Run a whole interpreted meeting on this machine: a local Janus, the local fake model server (or the
OpenAI API when OPENAI_API_KEY is set), the bot started exactly as `translator-bot join`, and two
simulated people who take turns speaking recorded sentences in their own languages.

The model provider's settings (OPENAI_*, AZURE_OPENAI_*, the model names) come from the environment,
then ./.env or --env-file, as for `join`; the rest of that file is for your own deployment and is not
used here.

Progress is shown as it happens. ./demo-output/ receives what each person heard (WAV), the meeting
transcript, the bot's log and a summary. Exit 0 when every utterance reached the other person in
their language, 1 when one did not, 2 when a prerequisite is missing.
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("demo-output"),
        help="where results go (default ./demo-output)",
    )
    parser.add_argument(
        "--languages",
        default="en,es",
        help="the two people's languages, from the recordings: en, es, de (default en,es)",
    )
    parser.add_argument("--turns", type=int, default=4, help="sentences spoken, alternating (default 4)")
    parser.add_argument(
        "--engine",
        choices=["translate", "realtime", "passthrough"],
        help="model engine (default: translate; realtime on Azure OpenAI)",
    )
    parser.add_argument(
        "--model",
        choices=["auto", "fake", "openai"],
        default="auto",
        help="auto (default): the OpenAI API (or Azure OpenAI) when its key is set in the environment "
        "or .env, else the local fake server",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        help="read the model provider's settings from this file instead of ./.env",
    )
    parser.add_argument(
        "--network",
        choices=["auto", "private", "host"],
        default="auto",
        help="where WebRTC runs: a private network namespace (default with the fake model) or this "
        "machine's own address (default with the real API, which needs the internet)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        default="WARNING",
        help="log level of the demo's own parts (the bot's log goes to bot.log at INFO)",
    )
    parser.add_argument(
        "--turn-timeout", type=float, default=20.0, help="seconds to wait for each translation (default 20)"
    )
    parser.add_argument(
        "--dtx",
        action="store_true",
        help="a room with Opus DTX: silent people send a packet per ~400 ms instead of 50 per second, "
        "as browsers that ask for it do",
    )


def _fail(message: str, code: int = 2) -> int:
    print(f"translator-bot demo: {redact(message)}", file=sys.stderr)
    return code


def _show(line: str) -> None:
    print(redact(line), flush=True)


def run(args: argparse.Namespace) -> int:
    from translator_bot.demo.provider_env import EnvFileError, read_provider_environment

    env_file: Path | None = getattr(args, "env_file", None)
    # The demo never loads the bot's settings, but a real key in the environment or the env file
    # must not show.
    register_secrets(given_secret_values({}, env_file))
    try:
        found = read_provider_environment(env_file, os.environ)
    except EnvFileError as exc:
        return _fail(str(exc))
    provider: Literal["fake", "openai"] = (
        ("openai" if found.has_credentials else "fake")
        if args.model == "auto"
        else ("openai" if args.model == "openai" else "fake")
    )
    if provider == "openai" and not found.has_credentials:
        return _fail(
            "--model openai needs OPENAI_API_KEY (or AZURE_OPENAI_ENDPOINT with AZURE_OPENAI_API_KEY or "
            "AZURE_OPENAI_AD_TOKEN), in the environment or .env"
        )
    on_azure = provider == "openai" and found.on_azure
    engine = args.engine or ("realtime" if on_azure else "translate")
    from translator_bot.demo.script import ScriptError, people_for, plan_turns
    from translator_bot.fixtures import load_manifest

    recordings = load_manifest()
    try:
        people = people_for(args.languages.split(","), sorted({u.language for u in recordings}))
        plan = plan_turns(people, recordings, args.turns, translated=engine != "passthrough")
    except ScriptError as exc:
        return _fail(str(exc))
    if shutil.which("janus") is None:
        return _fail(
            "Janus is not installed: run `sudo apt-get install janus` (or `bash scripts/install.sh`)"
        )

    # The namespace must be entered before anything starts a thread (asyncio's executor included).
    from translator_bot.demo.network import NetworkError, prepare_network

    try:
        network = prepare_network(args.network, needs_internet=provider == "openai")
    except NetworkError as exc:
        return _fail(str(exc))

    import asyncio

    from translator_bot.demo.runner import DemoConfig, DemoFailed, run_demo
    from translator_bot.logs import configure_logging

    # The demo's own peers log at WARNING; the bot's log goes to demo-output/bot.log.
    configure_logging(args.log_level, "text", [])
    config = DemoConfig(
        output_dir=args.output_dir,
        people=people,
        plan=plan,
        engine=engine,
        provider=provider,
        network=network,
        turn_timeout_s=args.turn_timeout,
        dtx=bool(getattr(args, "dtx", False)),
        # The bot runs elsewhere than here (cwd), so what only the env file says is handed to it.
        bot_env=found.from_file if provider == "openai" else {},
    )
    try:
        return asyncio.run(run_demo(config, _show))
    except DemoFailed as exc:
        return _fail(str(exc), 1)
