"""Command line: `translator-bot join MEETING_ID` and friends.

Exit codes (also in the README): 0 clean leave, 1 other failure, 2 usage or settings error,
3 room error (not found, refused, room server gone), 4 model provider auth or quota error,
5 model provider unavailable; 130 for a Ctrl-C on every command but `join` (for which it is a clean leave).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from translator_bot.distribution import package_version
from translator_bot.errors import ExitCode, TranslatorBotError
from translator_bot.extras import require_demo_extra
from translator_bot.logs import configure_logging_for, protect_output
from translator_bot.redact import redact
from translator_bot.settings_flags import add_settings_flags, settings_from_flags

log = logging.getLogger("translator_bot")

_DESCRIPTION = """\
Live interpreter for WebRTC meetings. The bot joins a Janus VideoRoom by meeting ID, listens to
each participant and speaks the other participant's words to them in their own language, using
the OpenAI Realtime API.

Typical use:
  export OPENAI_API_KEY=sk-...                # or AZURE_OPENAI_ENDPOINT + AZURE_OPENAI_API_KEY
  export TRANSLATOR_JANUS_URL=ws://janus.example.org:8188/
  translator-bot join 1234

Participants declare their language with a display name such as "Beatriz [es]" or a stream
description {"lang":"es"}. Every setting can also come from the environment or a .env file
(see .env.example); flags win over both.
"""

_EPILOG = """\
exit codes: 0 left cleanly, 1 other failure, 2 usage or settings error,
            3 room error (not found, refused, room server gone), 4 model provider auth/quota error,
            5 model provider unavailable; other commands exit 130 when interrupted (Ctrl-C)
"""


class _VersionAction(argparse.Action):
    """`--version`, with the version looked up only when asked (it costs `importlib.metadata`)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: object) -> None:
        super().__init__(
            option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help="show the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        sys.stdout.write(f"translator-bot {package_version()}\n")  # stdout, as argparse's own
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="translator-bot",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    join = commands.add_parser(
        "join",
        help="join a meeting and interpret until it ends or the bot is stopped",
        description="Join the Janus VideoRoom MEETING_ID and interpret between its participants. "
        "Stop with Ctrl-C or SIGTERM: the bot leaves the room, writes the transcript and exits 0.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    join.add_argument("meeting_id", metavar="MEETING_ID", help="the room to join (numeric or string id)")
    join.add_argument(
        "--create-room",
        action="store_true",
        help="create the room if it does not exist (needs TRANSLATOR_JANUS_ADMIN_KEY)",
    )
    add_settings_flags(join)

    fake = commands.add_parser(
        "fake-realtime",
        help="run the local fake of the OpenAI Realtime API (for demos and tests; no account needed)",
        description="Serve /v1/realtime and /v1/realtime/translations locally. Point the bot at it with "
        "OPENAI_BASE_URL=http://HOST:PORT/v1 and any OPENAI_API_KEY.",
    )
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8765)
    fake.add_argument("--fixtures", type=Path, help="fixture directory (default: the bundled recordings)")
    fake.add_argument(
        "--session-max-seconds", type=float, default=3600.0, help="send session_expired after this long"
    )
    fake.add_argument(
        "--first-audio-delay-ms",
        type=int,
        default=0,
        help="hold back the first audio of every response/translation this long (latency tests)",
    )
    fake.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper, default="INFO"
    )
    from translator_bot import completion, demo, doctor, healthcheck, web

    for name, module, summary in (
        (
            "demo",
            demo,
            "run a whole interpreted meeting on this machine with recorded speakers (no account needed)",
        ),
        ("doctor", doctor, "check prerequisites and settings (secrets masked)"),
        (
            "web",
            web,
            "serve the meeting page: join from a browser and hear the other person in your language",
        ),
        ("healthcheck", healthcheck, "exit 0 if the bot on this machine is ready (the image's HEALTHCHECK)"),
        ("completion", completion, "print a shell completion script (bash, zsh, fish, tcsh)"),
    ):
        module.configure_parser(
            commands.add_parser(
                name,
                help=summary,
                description=module.DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    return parser


def _run_join(args: argparse.Namespace) -> int:
    from translator_bot.system.malloc import tune_malloc

    tune_malloc()  # before the bot starts its threads
    settings = settings_from_flags(args)
    settings.require_provider_credentials()
    configure_logging_for(settings)
    from translator_bot.app import run_join

    return int(run_join(settings, args.meeting_id, create_room=args.create_room))


def _run_fake(args: argparse.Namespace) -> int:
    require_demo_extra("fake-realtime")
    from translator_bot.fake.server import run_fake_server_cli
    from translator_bot.logs import configure_logging

    configure_logging(args.log_level, "text")
    return int(run_fake_server_cli(args))


def _run_demo(args: argparse.Namespace) -> int:
    require_demo_extra("demo")
    from translator_bot import demo

    return demo.run(args)


def _print_completion(args: argparse.Namespace) -> int:
    from translator_bot.completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return int(ExitCode.OK)


def main(argv: Sequence[str] | None = None) -> int:
    protect_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    from translator_bot import doctor, healthcheck, web

    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "join": _run_join,
        "fake-realtime": _run_fake,
        "demo": _run_demo,
        "doctor": doctor.run,
        "web": web.run,
        "healthcheck": healthcheck.run,
        "completion": _print_completion,
    }
    try:
        return handlers[args.command](args)
    except TranslatorBotError as exc:
        print(f"translator-bot: {redact(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        # Ctrl-C: `join` leaves cleanly (it handles SIGINT itself; this is only a Ctrl-C before it
        # joined). Every other command did not finish: 128 + SIGINT, as shells report it.
        return int(ExitCode.OK if args.command == "join" else ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
