"""A canary in every secret setting, an error forced in every layer: the canary comes out nowhere.

Every secret setting (API keys, the Azure Entra ID token, Janus API secret, token and admin key, TURN
password) and the password
inside every URL setting gets its own canary. Each layer is made to fail the way it fails for real (a
closed port, a server that refuses the handshake, an invalid value, an exception with a traceback),
and whatever leaves the process (log lines in text and JSON, error messages, the CLI's last line,
reprs, /healthz and /metrics, transcripts, the web API, a child's argv) is searched for the canary's
core, which every escaped form of it (repr, JSON, percent-encoding) still contains.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from translator_bot import metrics
from translator_bot.engine.connection import keep_refusal_body, open_socket
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.errors import ProviderFatalError, RoomError, SettingsError
from translator_bot.interpreter.journal import TranscriptJournal
from translator_bot.interpreter.transcript import LaneInfo, Transcript
from translator_bot.logs import configure_logging_for
from translator_bot.ops import OpsServer
from translator_bot.room.janus import JanusError, JanusSession
from translator_bot.room.session import RoomSession
from translator_bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]

# Each value carries the characters that repr(), JSON and URLs escape differently ('"\é), so a redactor
# that knows only the literal misses the escaped forms; the core (the part before them) is what is
# searched for in the output.
SECRETS = {
    "OPENAI_API_KEY": "sk-CANARYopenaikey'\"\\é",
    "AZURE_OPENAI_API_KEY": "CANARYazurekey'\"\\é",
    "AZURE_OPENAI_AD_TOKEN": "CANARYentratoken'\"\\é",
    "TRANSLATOR_JANUS_API_SECRET": "CANARYjanussecret'\"\\é",
    "TRANSLATOR_JANUS_TOKEN": "CANARYjanustoken'\"\\é",
    "TRANSLATOR_JANUS_ADMIN_KEY": "CANARYjanusadmin'\"\\é",
    "TRANSLATOR_TURN_PASSWORD": "CANARYturnpassword'\"\\é",
}
# Passwords inside URL settings: percent-encoded as a URL must carry them (%40 is '@', %22 is '"').
URL_PASSWORDS = {
    "OPENAI_BASE_URL": "CANARYbaseurl%40x%22'é",
    "TRANSLATOR_JANUS_URL": "CANARYjanusurl%40x%22'é",
    "AZURE_OPENAI_ENDPOINT": "CANARYazureurl%40x%22'é",
    "TRANSLATOR_WEB_JANUS_URL": "CANARYwebjanusurl%40x%22'é",
}
CORES = [value.split("'")[0].split("%")[0].removeprefix("sk-") for value in SECRETS.values()] + [
    value.split("%")[0] for value in URL_PASSWORDS.values()
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_no_canary(text: str) -> None:
    leaked = [core for core in CORES if core in text]
    assert not leaked, f"{leaked} leaked in:\n{text}"


def canary_env(port: int, *, azure: bool = False) -> dict[str, str]:
    env = dict(SECRETS)
    env["OPENAI_BASE_URL"] = f"http://user:{URL_PASSWORDS['OPENAI_BASE_URL']}@127.0.0.1:{port}/v1"
    env["TRANSLATOR_JANUS_URL"] = f"ws://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@127.0.0.1:{port}/"
    env["TRANSLATOR_WEB_JANUS_URL"] = f"wss://page:{URL_PASSWORDS['TRANSLATOR_WEB_JANUS_URL']}@h.example/"
    if azure:
        env["AZURE_OPENAI_ENDPOINT"] = f"https://az:{URL_PASSWORDS['AZURE_OPENAI_ENDPOINT']}@127.0.0.1:{port}"
    env["TRANSLATOR_ICE_SERVERS"] = "turn:turn.example.org:3478"
    env["TRANSLATOR_TURN_USERNAME"] = "bot"
    return env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./.env


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook = hooks


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in canary_env(closed_port()).items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture
def azure_canaries(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in canary_env(closed_port(), azure=True).items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture(params=["text", "json"])
def log_format(request: pytest.FixtureRequest) -> str:
    fmt: str = request.param
    return fmt


def start_logging(settings: Settings, fmt: str) -> None:
    """Logging configured as `join` does (in the test itself: its handler writes to capsys's stderr)."""
    configure_logging_for(settings.model_copy(update={"log_format": fmt, "log_level": "DEBUG"}))


# --- settings --------------------------------------------------------------------------------------------


def test_repr_and_json_of_the_settings_hide_every_secret(
    canaries: Settings, azure_canaries: Settings
) -> None:
    for settings in (canaries, azure_canaries):
        assert_no_canary(repr(settings) + str(settings) + settings.model_dump_json())
    assert "ws://bot:***@127.0.0.1:" in repr(canaries)
    assert "https://az:***@127.0.0.1:" in repr(azure_canaries)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRANSLATOR_JANUS_URL", "ftp://bot:{pw}@janus.example.org/"),  # wrong scheme
        ("TRANSLATOR_JANUS_URL", "ws://bot:{pw}@janus.example.org:notaport/"),  # bad port
        ("OPENAI_BASE_URL", "bot:{pw}@api.example.org/v1"),  # no scheme at all
        ("TRANSLATOR_WEB_JANUS_URL", "wss://page:{pw}@/"),  # no host
        ("TRANSLATOR_ICE_SERVERS", "turn:bot:{pw}@turn.example.org:3478"),  # credentials in a TURN URL
        ("TRANSLATOR_ICE_SERVERS", "https://bot:{pw}@turn.example.org"),
    ],
)
def test_an_invalid_url_setting_is_not_echoed_with_its_password(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value.format(pw=URL_PASSWORDS["TRANSLATOR_JANUS_URL"]))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith(name)
    assert_no_canary(str(info.value))


def test_the_settings_error_of_a_flag_hides_the_password() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"janus_url": f"ftp://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@janus.example.org/"})
    assert str(info.value).startswith("--janus-url")
    assert_no_canary(str(info.value))


# --- room ------------------------------------------------------------------------------------------------


async def test_unreachable_janus_error_hides_the_url_password(
    canaries: Settings, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start_logging(canaries, log_format)
    with pytest.raises(RoomError) as info:
        await RoomSession.from_settings(canaries, "1234").join()
    assert "cannot reach the room server at ws://bot:***@127.0.0.1" in str(info.value)
    logging.getLogger("translator_bot.test").error("join failed: %s", info.value, exc_info=info.value)
    logging.getLogger("translator_bot.test").error("as repr: %r", info.value)
    assert_no_canary(str(info.value) + repr(info.value) + capsys.readouterr().err)


@pytest.fixture
async def refusing_server() -> AsyncIterator[int]:
    """A WebSocket endpoint that refuses every handshake with 401, as a proxy in front of Janus does."""

    async def refuse(_request: web.Request) -> web.Response:
        return web.json_response({"error": {"type": "invalid_request_error", "code": "nope"}}, status=401)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def test_janus_refusing_the_handshake_hides_the_url_password(
    canaries: Settings, refusing_server: int, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start_logging(canaries, log_format)
    url = f"ws://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@127.0.0.1:{refusing_server}/"
    with pytest.raises(JanusError) as info:
        await JanusSession.connect(url, api_secret=SECRETS["TRANSLATOR_JANUS_API_SECRET"])
    logging.getLogger("translator_bot.test").warning("janus: %s", info.value, exc_info=True)
    assert_no_canary(str(info.value) + repr(info.value) + capsys.readouterr().err)


def test_a_janus_session_repr_shows_no_credentials() -> None:
    # A session object in a log line or a debugger's repr must not carry the URL password, API secret
    # or token.
    from translator_bot.room.janus import _Credentials

    creds = _Credentials(SECRETS["TRANSLATOR_JANUS_API_SECRET"], SECRETS["TRANSLATOR_JANUS_TOKEN"])
    url = f"ws://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@janus.example.org/"
    session = JanusSession(url=url, _http=None, _own_http=False, _ws=None, _credentials=creds)  # type: ignore[arg-type]
    assert_no_canary(repr(creds) + repr(session))


# --- engine ----------------------------------------------------------------------------------------------


async def test_model_endpoint_errors_hide_the_url_password(
    canaries: Settings, refusing_server: int, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start_logging(canaries, log_format)
    endpoint = endpoint_for(canaries, "translate")
    assert_no_canary(repr(endpoint))
    refused = endpoint_for(
        canaries.model_copy(
            update={
                "openai_base_url": f"http://user:{URL_PASSWORDS['OPENAI_BASE_URL']}@127.0.0.1:{refusing_server}/v1"
            }
        ),
        "translate",
    )
    log = logging.getLogger("translator_bot.test")
    async with aiohttp.ClientSession() as http:
        for target in (endpoint, refused):  # a closed port, then a refused handshake
            with pytest.raises(Exception) as info:
                await open_socket(http, target, limit_s=5.0)
            log.error("lane x: %s", info.value, exc_info=True)
            assert_no_canary(str(info.value) + repr(info.value))
    assert_no_canary(capsys.readouterr().err)


async def test_azure_endpoint_errors_hide_the_url_password(
    azure_canaries: Settings, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start_logging(azure_canaries, log_format)
    # The resource key (`api-key`): the Entra ID token, which would win, is tested below.
    keyed = azure_canaries.model_copy(update={"azure_openai_ad_token": None})
    endpoint = endpoint_for(keyed, "realtime")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(Exception) as info:
            await open_socket(http, endpoint, limit_s=5.0)
    logging.getLogger("translator_bot.test").error("lane x: %s", info.value, exc_info=True)
    assert "cannot connect to 127.0.0.1:" in str(info.value)
    assert_no_canary(repr(endpoint) + str(info.value) + repr(info.value) + capsys.readouterr().err)


async def test_a_refused_entra_token_is_named_not_shown(
    azure_canaries: Settings, refusing_server: int, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start_logging(azure_canaries, log_format)
    log = logging.getLogger("translator_bot.test")
    # Refused by the server; then a URL whose user info would take the token's Authorization header.
    refused = azure_canaries.model_copy(
        update={"azure_openai_endpoint": f"http://127.0.0.1:{refusing_server}"}
    )
    for settings, said in ((refused, "rejected the Microsoft Entra ID token"), (azure_canaries, "user name")):
        endpoint = endpoint_for(settings, "realtime")
        assert endpoint.credential == "AZURE_OPENAI_AD_TOKEN"  # the token wins over the key, as in the SDK
        async with aiohttp.ClientSession(middlewares=(keep_refusal_body,)) as http:
            with pytest.raises(ProviderFatalError) as info:
                await open_socket(http, endpoint, limit_s=5.0)
        log.error("lane x: %s", info.value, exc_info=True)
        assert said in str(info.value) and "AZURE_OPENAI_AD_TOKEN" in str(info.value)
        assert_no_canary(repr(endpoint) + str(info.value) + repr(info.value))
    assert_no_canary(capsys.readouterr().err)


# --- logging ---------------------------------------------------------------------------------------------


def test_log_lines_tracebacks_and_extras_are_scrubbed(
    canaries: Settings, log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start_logging(canaries, log_format)
    log = logging.getLogger("translator_bot.test")
    every = [
        *SECRETS.values(),
        canaries.janus_url,
        canaries.openai_base_url,
        str(canaries.web_janus_url),
    ]
    for value in every:
        log.info("raw %s repr %r json %s", value, value, json.dumps(value))
        log.info("in an extra", extra={"detail": value, "nested": {"k": value}, "items": [value]})
        try:
            raise RuntimeError(f"failed with {value!r}")
        except RuntimeError:
            log.exception("traceback with %s", json.dumps({"v": value}, ensure_ascii=True))
        log.warning("stack", stack_info=True, extra={"url": value})
    err = capsys.readouterr().err
    assert "Logging error" not in err, err
    assert err.count("Traceback") == len(every)
    if log_format == "json":
        assert all(json.loads(line) for line in err.splitlines() if line.startswith("{"))
    assert_no_canary(err)


def test_uncaught_exceptions_are_scrubbed(canaries: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging_for(canaries)
    try:
        raise ValueError(f"crashed holding {SECRETS['OPENAI_API_KEY']!r} and {canaries.janus_url}")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    import threading

    def crash() -> None:
        raise KeyError(f"thread holding {SECRETS['TRANSLATOR_TURN_PASSWORD']!r}")

    hook = threading.excepthook
    try:
        thread = threading.Thread(target=crash, name="crasher")
        thread.start()
        thread.join()
    finally:
        threading.excepthook = hook
    err = capsys.readouterr().err
    assert "ValueError" in err and "uncaught exception in thread crasher" in err
    assert_no_canary(err)


# --- the command line, end to end --------------------------------------------------------------------------


@pytest.mark.parametrize("azure", [False, True])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_join_that_cannot_reach_janus_leaks_nothing(fmt: str, azure: bool, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_"))}
    env.update(canary_env(closed_port(), azure=azure))
    env.update(PYTHONPATH=str(ROOT), TRANSLATOR_LOG_FORMAT=fmt, TRANSLATOR_LOG_LEVEL="DEBUG")
    env["TRANSLATOR_METRICS_PORT"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "translator_bot", "join", "1234"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("translator-bot: cannot reach the room server at ws://bot:***@127.0.0.1:")
    assert_no_canary(done.stdout + done.stderr)


@pytest.mark.parametrize(
    "wrong",
    [
        # A secret pasted into a setting whose error quotes the value, in a process where the settings
        # never loaded (so nothing was registered from them).
        {"TRANSLATOR_ENGINE": SECRETS["TRANSLATOR_JANUS_TOKEN"]},
        {"TRANSLATOR_VOICE": "x", "TRANSLATOR_METRICS_PORT": SECRETS["OPENAI_API_KEY"]},
        {"TRANSLATOR_DEFAULT_LANGUAGE": SECRETS["TRANSLATOR_TURN_PASSWORD"]},
    ],
)
def test_the_cli_error_line_is_scrubbed(wrong: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_"))}
    env.update(canary_env(closed_port()), PYTHONPATH=str(ROOT), **wrong)
    done = subprocess.run(
        [sys.executable, "-m", "translator_bot", "join", "1234"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("translator-bot: " + next(iter(wrong)).replace("_VOICE", "_METRICS_PORT"))
    assert_no_canary(done.stdout + done.stderr)


@pytest.mark.parametrize("as_json", [False, True])
def test_doctor_online_with_every_canary_leaks_nothing(as_json: bool, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_"))}
    env.update(canary_env(closed_port()), PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "translator_bot", "doctor", "--for", "join", "--online"]
    done = subprocess.run(
        argv + (["--json"] if as_json else []),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the Janus URL points at a closed port
    assert "ws://bot:***@127.0.0.1:" in done.stdout
    assert_no_canary(done.stdout + done.stderr)


def test_the_demo_hides_a_real_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from translator_bot import demo

    # A key that never went through the bot's settings: the demo only reads the environment.
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "CANARYdemoonly-" + SECRETS["AZURE_OPENAI_API_KEY"])
    args = argparse.Namespace(model="fake", engine=None, languages="en,qq", turns=1)
    assert demo.run(args) == 2  # an unknown language: refused before anything starts
    demo._show("model said CANARYdemoonly-" + SECRETS["AZURE_OPENAI_API_KEY"])
    demo._fail("failed with " + repr("CANARYdemoonly-" + SECRETS["AZURE_OPENAI_API_KEY"]))
    out = capsys.readouterr()
    assert "CANARYdemoonly" not in out.out + out.err, out


def test_the_demo_hides_an_entra_token_it_read_from_dotenv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from translator_bot import demo

    token = "CANARYdemodotenv-" + SECRETS["AZURE_OPENAI_AD_TOKEN"]
    (tmp_path / ".env").write_text(
        "AZURE_OPENAI_ENDPOINT=https://res.openai.azure.com\n"
        f"AZURE_OPENAI_AD_TOKEN={json.dumps(token, ensure_ascii=False)}\n",
        encoding="utf-8",
    )
    args = argparse.Namespace(model="auto", engine=None, languages="en,qq", turns=1, env_file=None)
    assert demo.run(args) == 2  # an unknown language: refused before anything starts
    demo._show("model said " + token)
    demo._fail("failed with " + repr(token))
    out = capsys.readouterr()
    assert "CANARYdemodotenv" not in out.out + out.err, out


# --- ops endpoints, transcripts ----------------------------------------------------------------------------


async def test_healthz_and_metrics_are_scrubbed(canaries: Settings) -> None:
    reason = f"lost the room server at {canaries.janus_url}: {SECRETS['TRANSLATOR_JANUS_TOKEN']!r}"
    ops = OpsServer("127.0.0.1", 0, lambda: (False, {"room": reason}))
    label = metrics.ROOM_MALFORMED_EVENTS.labels(reason=SECRETS["TRANSLATOR_JANUS_ADMIN_KEY"])
    label.inc()
    await ops.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{ops.port}/healthz") as reply:
                health = await reply.text()
                assert reply.status == 503
            async with http.get(f"http://127.0.0.1:{ops.port}/metrics") as reply:
                body = await reply.text()
    finally:
        await ops.stop()
        metrics.ROOM_MALFORMED_EVENTS.remove(SECRETS["TRANSLATOR_JANUS_ADMIN_KEY"])
    assert "translator_room_malformed_events" in body and "lost the room server" in health
    assert_no_canary(health + body)


async def test_transcripts_are_scrubbed(canaries: Settings, tmp_path: Path) -> None:
    transcript = Transcript("1234")
    journal = TranscriptJournal(tmp_path / f"{transcript.base_name}.jsonl")
    transcript.record_to(journal.append)
    secret = SECRETS["OPENAI_API_KEY"]
    transcript.lane_opened(LaneInfo("l1", "p1", f"Eve {secret}", "en", "es", ("p2",)))
    transcript.source_text("l1", "i1", f"my key is {secret} and {canaries.janus_url}", True)
    transcript.translation_text("l1", "i1", f"mi clave es {secret}", True)
    transcript.finish()
    text = tmp_path / f"{transcript.base_name}.txt"
    status = await journal.aclose(text, transcript.render_text())
    assert status.lines_written == 1 and status.text_written
    written = journal.path.read_text(encoding="utf-8") + text.read_text(encoding="utf-8")
    assert "my key is" in written
    assert_no_canary(written)


# --- web ---------------------------------------------------------------------------------------------------


def test_the_web_server_passes_no_secret_in_a_childs_argv(tmp_path: Path) -> None:
    import argparse

    from translator_bot.web import _FORWARDED, configure_parser
    from translator_bot.web.app import bot_environment, bot_flags
    from translator_bot.web.process_launcher import default_command

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    url = f"ws://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@janus.internal:8188/"
    args = parser.parse_args(["--janus-url", url, "--engine", "passthrough"])
    argv = default_command(bot_flags(args, _FORWARDED))("1234")
    assert_no_canary(" ".join(argv))
    assert bot_environment(args, _FORWARDED)["TRANSLATOR_JANUS_URL"] == url  # by environment instead


def test_the_meeting_page_is_not_given_the_bots_janus_password(canaries: Settings) -> None:
    from translator_bot.web.config import WebConfig

    loopback = WebConfig.from_settings(canaries.model_copy(update={"web_janus_url": None}))
    remote = WebConfig(janus_url=f"wss://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@janus.example.org/j")
    shown = [
        config.browser_janus_url(host) for config in (loopback, remote) for host in (None, "", "meet.example")
    ]
    assert shown[-1] == "wss://janus.example.org/j"
    assert_no_canary(" ".join(shown))


async def test_the_web_api_never_shows_a_secret_from_a_childs_stderr(canaries: Settings) -> None:
    from translator_bot.web.process_launcher import BotLauncher

    said = f"translator-bot: refused at {canaries.janus_url} with {SECRETS['OPENAI_API_KEY']!r}"
    script = f"import sys; print({said!r}, file=sys.stderr); sys.exit(3)"
    launcher = BotLauncher(lambda _meeting: [sys.executable, "-c", script], stop_timeout_s=2.0)
    try:
        bot, _ = await launcher.start("1234")
        assert bot.task is not None
        await asyncio.wait_for(bot.task, 20)
        status = json.dumps(bot.status(), ensure_ascii=False)
    finally:
        await launcher.aclose()
    assert "The interpreter said: refused at" in status
    assert_no_canary(status)
