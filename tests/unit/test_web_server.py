"""The meeting page's HTTP API, with aiohttp's test client and a stand-in for `translator-bot join`
(a small Python child that prints log lines and exits with the code the meeting id asks for)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from translator_bot.settings import load_settings
from translator_bot.web import _FORWARDED, configure_parser
from translator_bot.web.access import AccessPolicy
from translator_bot.web.app import bot_environment, bot_flags
from translator_bot.web.childlog import log_message, read_record
from translator_bot.web.config import WebConfig, language_choices
from translator_bot.web.launcher import describe_exit, valid_meeting_id
from translator_bot.web.process_launcher import (
    BotLauncher,
    ProcessInterpreter,
    child_environment,
    default_command,
)
from translator_bot.web.ratelimit import StartLimiter, StartLimits
from translator_bot.web.server import create_app

# Behaves like the bot as far as the launcher can tell: log lines on stderr, "joined meeting" once in,
# SIGTERM -> clean exit 0, and the CLI's one-line error before a failing exit code.
FAKE_BOT = textwrap.dedent(
    """
    import json, signal, sys, time
    meeting = sys.argv[-1]
    def log(msg):
        print("2025-01-02 10:11:12,345 INFO    translator_bot.app: " + msg, file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (log("stopping: leaving meeting " + meeting), sys.exit(0)))
    if meeting.startswith("exit"):
        code = int(meeting[4:])
        print("translator-bot: failure number %d for meeting %s" % (code, meeting), file=sys.stderr)
        sys.exit(code)
    if meeting.startswith("leak"):
        print("translator-bot: refused with key sk-abcdefghijklmnop1234 " + "z" * 5000, file=sys.stderr)
        sys.exit(3)
    if meeting.startswith("slow"):
        time.sleep(60)
    if meeting.startswith("metrics"):
        # Serves its ops port as the bot's ops server does, on the port its environment gives it.
        import http.server, os, threading
        class Ops(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ('translator_meeting_info{meeting="%s"} 1' % meeting).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        port = int(os.environ["TRANSLATOR_METRICS_PORT"])
        server = http.server.HTTPServer(("127.0.0.1", port), Ops)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if meeting.startswith("loud"):
        # One line longer than a StreamReader's 64 KiB limit, then 8 MiB more of log: a watcher that
        # stops reading leaves this child blocked in write() and it never says it joined.
        print("x" * 200_000, file=sys.stderr, flush=True)
        for n in range(8 * 1024):
            print("%04d " % n + "y" * 1019, file=sys.stderr)
        sys.stderr.flush()
    if meeting.startswith("ids"):
        def record(msg, logger="translator_bot.room.session"):
            line = json.dumps({"ts": "x", "level": "info", "logger": logger, "msg": msg})
            print(line, file=sys.stderr, flush=True)
        record("joined meeting %s as participant 777" % meeting)
        record("publishing 'Interpreter -> Ann (en)' as participant 888")
        record("publishing 'Interpreter -> Bob (de)' as participant 999")
        record("unpublished 'Interpreter -> Bob (de)' (participant 999)")
        # After its room connection is recovered by joining again, the bot has new participant ids.
        record("unpublished 'Interpreter -> Ann (en)' (participant 888)")
        record("rejoined meeting %s as participant 778" % meeting)
        record("re-published 'Interpreter -> Ann (en)' as participant 889")
        # Only the room session's own JSON records are believed: not another logger's, not a text line
        # (a quoted name with a newline in a text log could fake one).
        record("publishing 'Mallory' as participant 666", logger="translator_bot.interpreter.meeting")
        log("publishing 'Mallory' as participant 665")
        record("a line only the server log may show")
    log("joined meeting %s as 'Interpreter'" % meeting)
    if meeting.startswith("stubborn"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.05)
    """
)


Client = TestClient[web.Request, web.Application]


def fake_command(meeting_id: str) -> Sequence[str]:
    return [sys.executable, "-c", FAKE_BOT, "join", "--", meeting_id]


@pytest.fixture
def config() -> WebConfig:
    return WebConfig(
        janus_url="ws://127.0.0.1:8188/",
        languages=tuple(language_choices(["en", "es", "de"])),
        ice_servers=({"urls": "stun:stun.example.org:3478"},),
    )


@pytest.fixture
async def launcher() -> AsyncIterator[BotLauncher]:
    bots = BotLauncher(fake_command, max_running=2, stop_timeout_s=2.0)
    yield bots
    await bots.aclose()


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(
    config: WebConfig, launcher: BotLauncher, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Client]:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "janus.js").write_text("export default function Janus() {}\n")
    (vendor / "adapter.js").write_text("window.adapter = {};\n")
    app = create_app(config, launcher, vendor_dir=vendor, limiter=StartLimiter(clock=clock), clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def wait_state(client: Client, meeting: str, state: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            reply = await client.get(f"/api/meetings/{meeting}/interpreter")
            body: dict[str, object] = await reply.json()
            if body["state"] == state:
                return body
            await asyncio.sleep(0.05)


def page_origin(client: Client) -> str:
    return f"http://{client.server.host}:{client.server.port}"


def post(client: Client, meeting: str, **headers: str) -> Any:
    """A start request as the page sends it (its own Origin, a JSON body); `headers` override."""
    return client.post(
        f"/api/meetings/{meeting}/interpreter",
        data="{}",
        headers={"Content-Type": "application/json", "Origin": page_origin(client), **headers},
    )


# --- page and configuration -----------------------------------------------------------------------


async def test_page_files_are_served_with_their_types(client: Client) -> None:
    for path, kind in [("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")]:
        reply = await client.get(path)
        assert reply.status == 200, path
        assert reply.content_type == kind, path
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    page = await client.get("/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'src="/app.js"' in await page.text()
    assert (await client.get("/vendor/janus.js")).content_type == "text/javascript"
    assert (await client.get("/vendor/other.js")).status == 404
    assert (await client.get("/server.py")).status == 404


async def test_missing_vendored_client_is_a_clear_500(
    config: WebConfig, launcher: BotLauncher, tmp_path: Path
) -> None:
    app = create_app(config, launcher, vendor_dir=tmp_path / "nothing-here")
    async with TestClient(TestServer(app)) as client:
        reply = await client.get("/vendor/janus.js")
        assert reply.status == 500
        assert reply.content_type == "text/html"
        assert "scripts/vendor-janus-js.sh" in await reply.text()
        health = await (await client.get("/healthz")).json()
        assert health["janus_js"].startswith("missing")


async def test_config_tells_the_browser_where_janus_is(client: Client) -> None:
    body = await (await client.get("/api/config")).json()
    # The bot's Janus is on loopback: the browser gets the same port on the host it loaded the page from.
    host = client.server.host
    assert body["janus_url"] == f"ws://{host}:8188/"
    assert [lang["tag"] for lang in body["languages"]] == ["en", "es", "de"]
    assert body["languages"][1] == {"tag": "es", "name": "Spanish", "native": "español"}
    assert body["ice_servers"] == [{"urls": "stun:stun.example.org:3478"}]
    assert body["start_needs_token"] is False


async def test_config_follows_the_public_host(config: WebConfig, launcher: BotLauncher) -> None:
    public = AccessPolicy.for_server("127.0.0.1", 0, ["http://meet.example.org:8080"])
    app = create_app(config, launcher, access=public)
    async with TestClient(TestServer(app)) as client:
        reply = await client.get("/api/config", headers={"Host": "meet.example.org:8080"})
        assert (await reply.json())["janus_url"] == "ws://meet.example.org:8188/"


def test_public_janus_url_and_ice_servers_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATOR_ICE_SERVERS", "turn:turn.example.org:3478,stun:stun.example.org")
    monkeypatch.setenv("TRANSLATOR_TURN_USERNAME", "bot-user")
    monkeypatch.setenv("TRANSLATOR_TURN_PASSWORD", "bots-own-s3cret")
    monkeypatch.setenv("TRANSLATOR_WEB_JANUS_URL", "wss://janus.example.org/ws")
    monkeypatch.setenv("TRANSLATOR_WEB_LANGUAGES", "fr, es-MX ,Spanish")
    config = WebConfig.from_settings(load_settings({"janus_url": "ws://janus.internal:8188/"}))
    assert config.browser_janus_url("anything:1") == "wss://janus.example.org/ws"
    # STUN is shared; the bot's TURN account is the bot's alone, never sent to browsers.
    assert config.ice_servers_at(0.0) == [{"urls": "stun:stun.example.org"}]
    assert "bots-own-s3cret" not in repr(config) and "bot-user" not in repr(config)
    assert [c.tag for c in config.languages] == ["fr", "es-MX", "es"]
    monkeypatch.delenv("TRANSLATOR_WEB_JANUS_URL")
    internal = WebConfig.from_settings(load_settings({"janus_url": "ws://janus.internal:8188/"}))
    assert internal.browser_janus_url("meet.example.org") == "ws://janus.internal:8188/"


# --- starting interpreters ----------------------------------------------------------------------------


async def test_start_runs_one_interpreter_per_meeting(client: Client, launcher: BotLauncher) -> None:
    assert (await (await client.get("/api/meetings/1234/interpreter")).json())["state"] == "none"
    first = await post(client, "1234")
    assert first.status == 202
    started = await first.json()
    assert started["started"] is True and started["state"] in ("starting", "running")
    running = await wait_state(client, "1234", "running")
    assert running["pid"] == started["pid"]
    bot = launcher.get("1234")
    assert bot is not None and bot.last_line == "joined meeting 1234 as 'Interpreter'"
    assert "last_line" not in running  # the bot's log stays in the server's log

    again = await post(client, "1234")
    assert again.status == 200
    body = await again.json()
    assert body["started"] is False and body["pid"] == started["pid"]
    assert len(launcher.running) == 1


async def test_exit_codes_are_explained(client: Client, launcher: BotLauncher) -> None:
    expected = {
        "exit2": "settings are wrong",
        "exit3": "could not join or stay in the meeting",
        "exit4": "model provider refused",
        "exit1": "unexpected error",
    }
    for meeting, words in expected.items():
        assert (await post(client, meeting)).status == 202
        body = await wait_state(client, meeting, "exited")
        assert body["exit_code"] == int(meeting[4:])
        assert words in str(body["message"]), body
        bot = launcher.get(meeting)
        assert bot is not None and bot.last_line == f"failure number {meeting[4:]} for meeting {meeting}"
    # The room error carries the bot's own reason, which names the meeting.
    body = await wait_state(client, "exit3", "exited")
    assert "failure number 3 for meeting exit3" in str(body["message"])


async def test_a_bot_with_huge_and_endless_log_lines_is_still_read(client: Client) -> None:
    assert (await post(client, "loud")).status == 202
    body = await wait_state(client, "loud", "running")
    assert "x" * 600 not in str(body)


async def test_the_page_is_told_the_bots_participant_ids_and_nothing_of_its_log(client: Client) -> None:
    assert (await post(client, "ids")).status == 202
    body = await wait_state(client, "ids", "running")
    for _ in range(50):
        if body.get("participants") == ["777", "778", "889"]:
            break
        await asyncio.sleep(0.05)
        body = await (await client.get("/api/meetings/ids/interpreter")).json()
    assert body["participants"] == ["777", "778", "889"] and body["display_name"] == "Interpreter", body
    assert "only the server log" not in str(body)


async def test_a_bots_error_is_shown_scrubbed_and_short(client: Client) -> None:
    assert (await post(client, "leak3")).status == 202
    body = await wait_state(client, "leak3", "exited")
    message = str(body["message"])
    # The process's one redactor masks a key it was told of, and any `sk-` key by its shape.
    assert "refused with key sk-***" in message and "sk-abcdefghijklmnop1234" not in message, message
    assert len(message) < 500, message


async def test_an_exited_interpreter_can_be_started_again(client: Client, clock: FakeClock) -> None:
    assert (await post(client, "exit3")).status == 202
    first = await wait_state(client, "exit3", "exited")
    clock.now += StartLimits().backoff_first_s  # a failed bot is retried after the back-off
    reply = await post(client, "exit3")
    assert reply.status == 202
    assert (await reply.json())["pid"] != first["pid"]


async def test_bad_meeting_ids_never_reach_a_process(client: Client, launcher: BotLauncher) -> None:
    for bad in ["-rf", "a%20b", "a;b", "x" * 65, "%2E%2E", "_x", "a$(id)"]:
        reply = await post(client, bad)
        assert reply.status in (400, 404), bad
        assert (await client.get(f"/api/meetings/{bad}/interpreter")).status in (400, 404), bad
    assert launcher.running == []
    for good in ["1234", "room-7", "team.sync_2"]:
        assert valid_meeting_id(good)


async def test_start_needs_a_same_origin_json_request(client: Client, launcher: BotLauncher) -> None:
    form = await client.post("/api/meetings/1234/interpreter", data={"x": "1"})
    assert form.status == 403
    form = await client.post(
        "/api/meetings/1234/interpreter", data={"x": "1"}, headers={"Origin": page_origin(client)}
    )
    assert form.status == 403
    cross = await post(client, "1234", Origin="https://evil.example")
    assert cross.status == 403
    assert launcher.running == []
    same = await post(client, "1234", Origin=f"http://{client.server.host}:{client.server.port}")
    assert same.status == 202


async def test_the_page_can_stop_its_interpreter(client: Client, launcher: BotLauncher) -> None:
    assert (await post(client, "1234")).status == 202
    await wait_state(client, "1234", "running")
    url = "/api/meetings/1234/interpreter"
    assert (await client.delete(url)).status == 403  # not from the page: no origin, no JSON body
    page = {"Content-Type": "application/json", "Origin": page_origin(client)}
    stopped = await client.delete(url, data="{}", headers=page)
    assert stopped.status == 200
    body = await stopped.json()
    assert body["state"] == "exited" and body["exit_code"] == 0, body
    bot = launcher.get("1234")
    assert bot is not None and bot.last_line == "stopping: leaving meeting 1234" and not bot.failed
    assert (await client.delete(url, data="{}", headers=page)).status == 404


async def test_too_many_interpreters_is_429(client: Client) -> None:
    assert (await post(client, "slow1")).status == 202
    assert (await post(client, "slow2")).status == 202
    third = await post(client, "slow3")
    assert third.status == 429
    assert "already running" in (await third.json())["error"]


async def test_each_bot_gets_its_own_metrics_port_listed_by_the_api(
    client: Client, launcher: BotLauncher
) -> None:
    for meeting in ("metrics1", "metrics2"):
        assert (await post(client, meeting)).status == 202
    one = await wait_state(client, "metrics1", "running")
    two = await wait_state(client, "metrics2", "running")
    ports = [one["metrics_port"], two["metrics_port"]]
    assert all(isinstance(port, int) and port > 0 for port in ports) and ports[0] != ports[1], ports
    for meeting, port in zip(("metrics1", "metrics2"), ports, strict=True):
        async with client.session.get(f"http://127.0.0.1:{port}/metrics") as scraped:
            assert f'meeting="{meeting}"' in await scraped.text()
    listing = await (await client.get("/api/interpreters")).json()
    assert listing["launcher"] == "process"
    listed = {bot["meeting"]: bot["metrics_port"] for bot in listing["interpreters"]}
    assert listed == {"metrics1": ports[0], "metrics2": ports[1]}
    # The server's own environment still turns the ops server off: only the launcher hands out ports.
    assert bot_environment()["TRANSLATOR_METRICS_PORT"] == "0"


async def test_listing_interpreters_needs_the_token_when_one_is_set(
    config: WebConfig, launcher: BotLauncher
) -> None:
    access = AccessPolicy.for_server("127.0.0.1", 0, ["http://meet.example.org"], token="open-sesame")
    async with TestClient(TestServer(create_app(config, launcher, access=access))) as client:
        host = {"Host": "meet.example.org"}
        assert (await client.get("/api/interpreters", headers=host)).status == 401
        ok = await client.get("/api/interpreters", headers={**host, "Authorization": "Bearer open-sesame"})
        assert ok.status == 200 and (await ok.json())["interpreters"] == []


async def test_shutdown_stops_and_reaps_every_interpreter(config: WebConfig, tmp_path: Path) -> None:
    launcher = BotLauncher(fake_command, max_running=4, stop_timeout_s=1.0)
    app = create_app(config, launcher, vendor_dir=tmp_path)
    async with TestClient(TestServer(app)) as client:
        assert (await post(client, "1")).status == 202
        assert (await post(client, "stubborn")).status == 202
        await wait_state(client, "1", "running")
        await wait_state(client, "stubborn", "running")
        procs = [bot.proc for bot in launcher.running if isinstance(bot, ProcessInterpreter)]
    # Leaving the client shuts the app down: SIGTERM, then SIGKILL for the one that ignores it.
    assert [p.returncode for p in procs] == [0, -9]
    gentle, stubborn = launcher.get("1"), launcher.get("stubborn")
    assert (
        gentle is not None and gentle.state == "exited" and gentle.last_line == "stopping: leaving meeting 1"
    )
    assert stubborn is not None and "SIGKILL" in str(stubborn.status()["message"])
    with pytest.raises(Exception, match="shutting down"):
        await launcher.start("2")


async def test_a_missing_bot_program_is_reported(config: WebConfig, tmp_path: Path) -> None:
    launcher = BotLauncher(lambda m: ["/nonexistent/translator-bot", "join", m])
    app = create_app(config, launcher, vendor_dir=tmp_path)
    async with TestClient(TestServer(app)) as client:
        reply = await post(client, "1234")
        assert reply.status == 503
        assert "cannot start the interpreter" in (await reply.json())["error"]


# --- pieces ---------------------------------------------------------------------------------------------


def test_the_bot_command_keeps_the_meeting_id_one_argument() -> None:
    argv = list(default_command(["--engine", "translate"])("1234"))
    assert argv[0] == sys.executable
    assert argv[1:] == ["-m", "translator_bot", "join", "--engine", "translate", "--", "1234"]


def test_settings_flags_are_forwarded_to_the_bot(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    env_file = tmp_path / "bot.env"
    args = parser.parse_args(["--port", "9000", "--engine", "passthrough", "--env-file", str(env_file)])
    assert args.port == 9000 and args.host == "127.0.0.1"
    assert bot_flags(args, _FORWARDED) == ["--env-file", str(env_file), "--engine", "passthrough"]
    assert bot_environment()["TRANSLATOR_METRICS_PORT"] == "0"


def test_log_lines_and_exits_read_well() -> None:
    assert log_message('{"ts": "x", "level": "info", "msg": "joined meeting 1"}') == "joined meeting 1"
    assert log_message("2025-01-02 10:11:12,345 WARNING translator_bot.room: slow") == "slow"
    assert log_message("translator-bot: OPENAI_API_KEY is not set") == "OPENAI_API_KEY is not set"
    assert describe_exit(-15, None) == "the interpreter was stopped by SIGTERM"
    assert describe_exit(0, "x") == "the interpreter left the meeting"
    assert describe_exit(4, "bad key").endswith(". The interpreter said: bad key")
    assert describe_exit(9, None) == "the interpreter exited with code 9"


def test_the_bots_log_is_read_as_json_records_at_info_at_least() -> None:
    env = child_environment({"TRANSLATOR_LOG_LEVEL": "WARNING", "TRANSLATOR_LOG_FORMAT": "text", "X": "1"})
    assert env == {"TRANSLATOR_LOG_LEVEL": "INFO", "TRANSLATOR_LOG_FORMAT": "json", "X": "1"}
    assert child_environment({"TRANSLATOR_LOG_LEVEL": "debug"})["TRANSLATOR_LOG_LEVEL"] == "debug"
    record = read_record('{"level": "warning", "logger": "translator_bot.room.session", "msg": "slow"}')
    assert (record.level, record.logger, record.message, record.structured) == (
        logging.WARNING,
        "translator_bot.room.session",
        "slow",
        True,
    )
    assert not read_record("2025-01-02 10:11:12,345 INFO    translator_bot.room.session: x").structured
