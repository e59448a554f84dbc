"""`translator-bot doctor`: checks over a described machine, secret masking, exit codes, JSON, a real run."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from translator_bot.cli import build_parser, main
from translator_bot.doctor import checks
from translator_bot.doctor.command import execute
from translator_bot.doctor.model import Check
from translator_bot.doctor.online import host_check, janus_check
from translator_bot.doctor.probe import Probe
from translator_bot.redact import Redactor, mask_secret
from translator_bot.settings import Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-doctortest-Zq7XkW3vP9mN2bL8cR4tY6"
AZURE_KEY = "azurekey0doctor7e3f9a1b2c4d5e6f8a9b"
JANUS_SECRET = "janus-apisecret-Hq2Wm8"
TURN_PASSWORD = "turn-password-Lp5Ns3"
PACKAGE_DIR = Path("/opt/app/translator_bot")
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
STATUSES = {"ok", "warn", "missing", "invalid"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./.env


def _recordings() -> tuple[Path, list[str]]:
    return Path("/rec"), ["en", "es"]


def fake_probe(
    *,
    missing_commands: tuple[str, ...] = (),
    missing_files: tuple[Path, ...] = (),
    **overrides: Any,
) -> Probe:
    """A machine with everything installed, minus what the test takes away."""
    commands = {name: f"/usr/bin/{name}" for name in ("janus", "ip", "node", "npm")}
    files = {
        LIB / "transports" / "libjanus_websockets.so",
        checks.CHROMIUM,
        PACKAGE_DIR / checks.JANUS_JS,
    } - set(missing_files)

    def which(name: str) -> str | None:
        return None if name in missing_commands else commands.get(name)

    probe = Probe(
        python_version=(3, 11, 7),
        python_executable="/usr/bin/python3",
        bot_version="0.1.0",
        package_dir=PACKAGE_DIR,
        which=which,
        is_file=lambda path: path in files,
        command_output=lambda argv: "Janus version: 1102 (1.1.2)" if "janus" in argv[0] else None,
        janus_lib_dir=lambda: LIB,
        package_version=lambda name: "1.0",
        missing_modules=lambda modules: [],
        private_network_error=lambda: None,
        recordings=_recordings,
    )
    return replace(probe, **overrides)


def by_name(found: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in found}


def doctor(*argv: str, probe: Probe | None = None) -> tuple[int, str]:
    args = build_parser().parse_args(["doctor", *argv])
    out = io.StringIO()
    code = execute(args, probe or fake_probe(), out=out)
    return code, out.getvalue()


def doctor_json(*argv: str, probe: Probe | None = None) -> tuple[int, dict[str, Any]]:
    code, text = doctor("--json", *argv, probe=probe)
    return code, json.loads(text)


# --- prerequisites ---------------------------------------------------------------------------------


def test_a_complete_machine_has_no_problem():
    found = checks.system_checks(fake_probe())
    assert {c.status for c in found} == {"ok"}, [c for c in found if c.status != "ok"]
    names = by_name(found)
    assert names["janus"].detail == "/usr/bin/janus 1.1.2"
    assert names["recordings"].detail == "2 recordings (en, es) in /rec"
    assert not any(c.blocks("all") for c in found)


def test_missing_janus_blocks_the_demo_only():
    found = by_name(checks.system_checks(fake_probe(missing_commands=("janus",))))
    janus = found["janus"]
    assert (janus.status, janus.fix) == ("missing", "apt-get install janus")
    assert janus.blocks("demo") and janus.blocks("all") and not janus.blocks("join")


def test_missing_janus_plugins_or_websockets_transport():
    no_lib = by_name(checks.system_checks(fake_probe(janus_lib_dir=lambda: None)))["janus plugins"]
    assert no_lib.status == "missing" and "libjanus_videoroom.so" in no_lib.detail
    no_ws = fake_probe(missing_files=(LIB / "transports" / "libjanus_websockets.so",))
    plugin = by_name(checks.system_checks(no_ws))["janus plugins"]
    assert plugin.status == "missing" and "WebSockets" in plugin.detail and plugin.blocks("demo")


def test_missing_ip_names_iproute2():
    ip = by_name(checks.system_checks(fake_probe(missing_commands=("ip",))))["ip"]
    assert (ip.status, ip.fix) == ("missing", "apt-get install iproute2")
    # Not on PATH but in /usr/sbin, as for a user whose PATH lacks the sbin folders.
    probe = fake_probe(missing_commands=("ip",))
    sbin = replace(probe, is_file=lambda path: path == Path("/usr/sbin/ip") or probe.is_file(path))
    assert by_name(checks.system_checks(sbin))["ip"].detail == "/usr/sbin/ip"


def test_no_namespace_permission_blocks_the_demo_with_the_reason():
    reason = "unshare(CLONE_NEWUSER|CLONE_NEWNET) failed: Operation not permitted"
    check = by_name(checks.system_checks(fake_probe(private_network_error=lambda: reason)))["private network"]
    assert check.status == "missing" and reason in check.detail
    assert check.fix is not None and "CAP_SYS_ADMIN" in check.fix
    assert check.blocks("demo") and not check.blocks("join")


def test_the_demo_extra_blocks_the_demo_not_join():
    probe = fake_probe(missing_modules=lambda modules: [m for m in modules if m != "scipy"])
    check = by_name(checks.system_checks(probe))["demo extra"]
    assert check.status == "missing" and check.detail.startswith("librosa, soxr not installed")
    assert check.fix is not None and "pip install 'translator-bot[demo]'" in check.fix
    assert check.blocks("demo") and not check.blocks("join")
    assert by_name(checks.system_checks(fake_probe()))["demo extra"].status == "ok"


def test_missing_recordings_old_python_and_broken_package():
    def no_recordings() -> tuple[Path, list[str]]:
        raise FileNotFoundError("speech fixtures not found at /x")

    def broken(name: str) -> str:
        if name == "av":
            raise ImportError("libavcodec.so.61: cannot open shared object file")
        return "1.0"

    probe = fake_probe(recordings=no_recordings, python_version=(3, 10, 12), package_version=broken)
    found = by_name(checks.system_checks(probe))
    assert found["recordings"].status == "missing" and found["recordings"].blocks("demo")
    assert found["python"].status == "missing" and found["python"].blocks("join")
    assert found["av"].status == "missing" and "libavcodec" in found["av"].detail
    assert found["av"].blocks("join") and found["av"].blocks("demo")
    assert found["aiortc"].status == "ok"


def test_optional_tools_only_warn():
    probe = fake_probe(
        missing_commands=("node", "npm"), missing_files=(checks.CHROMIUM, PACKAGE_DIR / checks.JANUS_JS)
    )
    found = by_name(checks.system_checks(probe))
    for name in ("chromium", "janus.js", "node/npm"):
        assert found[name].status == "warn" and found[name].fix, name
        assert not found[name].blocks("all")
    # With janus.js vendored, node and npm are not needed.
    vendored = by_name(checks.system_checks(fake_probe(missing_commands=("node", "npm"))))
    assert vendored["node/npm"].status == "ok" and "not needed" in vendored["node/npm"].detail


def test_an_uninstalled_source_tree_warns():
    bot = by_name(checks.system_checks(fake_probe(bot_version="0.0.0+unknown")))["translator-bot"]
    assert bot.status == "warn" and bot.fix is not None and "install" in bot.fix


# --- settings and exit codes -------------------------------------------------------------------------


def test_missing_key_fails_join_but_not_demo():
    code, text = doctor("--for", "join")
    assert code == 1
    assert re.search(r"^  missing  credentials +OPENAI_API_KEY is not set", text, re.M), text
    assert "-> export OPENAI_API_KEY=" in text
    assert "join: not ready, fix: credentials" in text
    assert doctor("--for", "demo")[0] == 0
    assert doctor()[0] == 1  # all: join's problem counts


def test_a_key_makes_join_ready(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    code, text = doctor("--for", "join")
    assert code == 0, text
    assert re.search(r"^  ok +credentials +OPENAI_API_KEY sk-…\(set, 36 chars\)$", text, re.M), text
    assert "join: ready" in text


def test_passthrough_needs_no_key_and_azure_needs_its_own(monkeypatch):
    code, report = doctor_json("--for", "join", "--engine", "passthrough")
    assert code == 0 and by_name_json(report)["credentials"]["status"] == "ok"
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    code, report = doctor_json("--for", "join")
    checks_ = by_name_json(report)
    assert code == 1
    assert checks_["credentials"]["detail"] == "AZURE_OPENAI_API_KEY is not set"
    assert checks_["provider"]["status"] == "warn"  # no deployment name
    assert "realtime" in checks_["provider"]["detail"]


def by_name_json(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_missing_demo_prerequisite_fails_demo_and_all_not_join(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    probe = fake_probe(missing_commands=("janus",))
    assert doctor("--for", "demo", probe=probe)[0] == 1
    assert doctor("--for", "all", probe=probe)[0] == 1
    assert doctor("--for", "join", probe=probe)[0] == 0


def test_sources_flag_env_dotenv_default(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("TRANSLATOR_VOICE=cedar\nTRANSLATOR_DEFAULT_LANGUAGE=es\n")
    monkeypatch.setenv("translator_default_language", "German")  # names match case-insensitively
    _, report = doctor_json("--display-name", "Dolmetscher")
    rows = {row["name"]: row for row in report["settings"]["values"]}
    assert (rows["TRANSLATOR_VOICE"]["value"], rows["TRANSLATOR_VOICE"]["source"]) == ("cedar", ".env")
    assert (rows["TRANSLATOR_DEFAULT_LANGUAGE"]["value"], rows["TRANSLATOR_DEFAULT_LANGUAGE"]["source"]) == (
        "de",
        "env",
    )
    assert rows["TRANSLATOR_DISPLAY_NAME"] == {
        "name": "TRANSLATOR_DISPLAY_NAME",
        "value": "Dolmetscher",
        "source": "flag",
        "secret": False,
    }
    assert (rows["TRANSLATOR_LOG_LEVEL"]["value"], rows["TRANSLATOR_LOG_LEVEL"]["source"]) == (
        "INFO",
        "default",
    )
    assert {row["name"] for row in report["settings"]["values"]} == {
        env_name(f) for f in Settings.model_fields
    }


def test_env_file_flag_is_honoured_and_a_missing_one_is_a_usage_error(tmp_path):
    custom = tmp_path / "prod.env"
    custom.write_text(f"OPENAI_API_KEY={FAKE_KEY}\nTRANSLATOR_JANUS_URL=wss://janus.example.org:8989/\n")
    code, report = doctor_json("--for", "join", "--env-file", str(custom))
    rows = {row["name"]: row for row in report["settings"]["values"]}
    assert code == 0
    assert rows["OPENAI_API_KEY"]["source"] == str(custom)
    assert by_name_json(report)["janus url"]["status"] == "ok"
    assert doctor("--env-file", str(tmp_path / "nope.env"))[0] == 2


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--for", "everything"])
    assert info.value.code == 2


def test_invalid_settings_are_reported_and_the_rest_still_runs(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("TRANSLATOR_METRICS_PORT", "abc")
    code, text = doctor("--for", "join")
    assert code == 1
    assert re.search(
        r"^  invalid  settings +TRANSLATOR_METRICS_PORT: Input should be a valid integer", text, re.M
    )
    assert re.search(r"^  ok +janus +/usr/bin/janus", text, re.M)  # the machine checks still ran
    assert re.search(r"^  TRANSLATOR_METRICS_PORT +abc +env$", text, re.M)  # the raw value and its source
    assert doctor("--for", "demo")[0] == 0


def test_json_shape(monkeypatch):
    monkeypatch.setenv("TRANSLATOR_LOG_FORMAT", "xml")
    code, report = doctor_json(probe=fake_probe(missing_commands=("janus",)))
    assert set(report) == {"for", "exit_code", "ready", "checks", "settings"}
    assert (report["for"], report["exit_code"], code) == ("all", 1, 1)
    assert report["ready"] == {"join": False, "demo": False}
    for check in report["checks"]:
        assert set(check) == {"section", "name", "status", "detail", "fix", "needed_for"}
        assert check["status"] in STATUSES
        assert set(check["needed_for"]) <= {"join", "demo"}
        assert check["status"] == "ok" or check["fix"], check
    assert report["settings"]["valid"] is False
    assert report["settings"]["error"].startswith("TRANSLATOR_LOG_FORMAT: Input should be 'text' or 'json'")
    assert by_name_json(report)["janus"]["needed_for"] == ["demo"]


# --- secrets -----------------------------------------------------------------------------------------


def test_mask_secret():
    assert mask_secret(None) == "(not set)"
    assert mask_secret("") == "(set, empty)"
    assert mask_secret(FAKE_KEY) == f"sk-…(set, {len(FAKE_KEY)} chars)"
    assert mask_secret("sk-proj-" + "a" * 40) == "sk-proj-…(set, 48 chars)"
    assert mask_secret("sk-local") == "(set, 8 chars)"  # the prefix would be most of a short key
    assert mask_secret(AZURE_KEY) == f"(set, {len(AZURE_KEY)} chars)"


def test_redactor_removes_known_secrets_and_key_shapes():
    quoted = 'pa"ss\\word-9'
    redact = Redactor([JANUS_SECRET, quoted, None, ""])
    text = redact(f"got {JANUS_SECRET!r} and {FAKE_KEY} but not task-list-entries")
    assert JANUS_SECRET not in text and FAKE_KEY[3:] not in text
    assert "task-list-entries" in text
    # As JSON or an error message's repr() escape it.
    assert "ss" not in redact(json.dumps({"v": quoted})) and "ss" not in redact(repr(quoted))


def _assert_no_secret(text: str) -> None:
    for secret in (FAKE_KEY, AZURE_KEY, JANUS_SECRET, TURN_PASSWORD):
        assert secret not in text
        assert secret[3:14] not in text  # nor any telling part of it


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"TRANSLATOR_METRICS_PORT": "abc"},
        # A key pasted into the wrong setting is quoted by the validation error: it must not come out.
        {"OPENAI_BASE_URL": FAKE_KEY},
        {"TRANSLATOR_ENGINE": JANUS_SECRET},
    ],
)
def test_secrets_never_leak(monkeypatch, tmp_path, as_json, broken):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("TRANSLATOR_JANUS_API_SECRET", JANUS_SECRET)
    (tmp_path / ".env").write_text(
        f"AZURE_OPENAI_API_KEY={AZURE_KEY}\nTRANSLATOR_TURN_PASSWORD={TURN_PASSWORD}\n"
    )
    for name, value in broken.items():
        monkeypatch.setenv(name, value)
    argv = ["--json"] if as_json else []
    code, text = doctor(*argv, "--for", "join")
    _assert_no_secret(text)
    assert "sk-…(set, 36 chars)" in text
    if broken:
        assert code == 1 and "invalid" in text


def test_secret_given_in_a_url_is_hidden(monkeypatch):
    monkeypatch.setenv("TRANSLATOR_JANUS_URL", f"wss://bot:{TURN_PASSWORD}@janus.example.org:8989/")
    _, text = doctor()
    assert TURN_PASSWORD not in text and "wss://bot:***@janus.example.org:8989/" in text


# --- .env.example ------------------------------------------------------------------------------------


def test_env_example_is_usable_as_is_and_its_defaults_are_the_real_ones(tmp_path):
    example = ROOT / ".env.example"
    # Copied as is, it sets only the (empty) key, the one line a newcomer must fill in.
    copied = load_settings(env_file=example)
    assert copied.openai_api_key is not None and copied.openai_api_key.get_secret_value() == ""
    assert copied.model_copy(update={"openai_api_key": None}) == load_settings()
    uncommented = tmp_path / "all.env"
    lines = example.read_text().splitlines()
    uncommented.write_text("\n".join(re.sub(r"^# ([A-Z_]+=.+)$", r"\1", line) for line in lines))
    every_default = load_settings(env_file=uncommented)
    assert every_default.model_copy(update={"openai_api_key": None}) == load_settings()


def test_env_example_names_only_real_settings():
    names = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    known = {env_name(field) for field in Settings.model_fields}
    assert set(names) == known
    assert len(names) == len(set(names))


# --- --online ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def _janus_app(reply: Callable[[dict[str, Any]], dict[str, Any]]) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("janus-protocol",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_json(reply(json.loads(message.data)))
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    return app


@pytest.mark.parametrize(
    ("plugins", "status"),
    [({"janus.plugin.videoroom": {}}, "ok"), ({"janus.plugin.echotest": {}}, "missing")],
)
async def test_online_janus_info(plugins, status):
    seen: list[dict[str, Any]] = []

    def reply(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        return {
            "janus": "server_info",
            "transaction": request["transaction"],
            "version_string": "1.3.0",
            "plugins": plugins,
        }

    async with _serve(_janus_app(reply)) as url:
        check = await janus_check(url, api_secret=JANUS_SECRET)
    assert check.status == status, check
    assert "1.3.0" in check.detail
    assert seen[0]["janus"] == "info" and seen[0]["apisecret"] == JANUS_SECRET


async def test_online_janus_refusal_and_unreachable():
    def refuse(request: dict[str, Any]) -> dict[str, Any]:
        return {
            "janus": "error",
            "transaction": request["transaction"],
            "error": {"code": 403, "reason": "Unauthorized request (wrong or missing secret/token)"},
        }

    async with _serve(_janus_app(refuse)) as url:
        check = await janus_check(url)
    assert check.status == "missing" and "Unauthorized" in check.detail
    closed = _closed_port()
    check = await janus_check(f"ws://127.0.0.1:{closed}/")
    assert check.status == "missing" and check.blocks("join") and "TRANSLATOR_JANUS_URL" in (check.fix or "")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_online_model_host_connects_without_sending_anything():
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await reader.read())  # until the doctor hangs up
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        check = await host_check(f"http://127.0.0.1:{port}/v1")
        data = await asyncio.wait_for(received, 5)
    assert check.status == "ok" and f"127.0.0.1:{port}" in check.detail
    assert data == b""  # no request, no key
    closed = await host_check(f"http://127.0.0.1:{_closed_port()}/v1")
    assert closed.status == "missing" and closed.blocks("join")


def test_online_flag_runs_both_probes(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("TRANSLATOR_JANUS_URL", f"ws://127.0.0.1:{_closed_port()}/")
    code, report = doctor_json("--for", "join", "--online")
    online = {c["name"]: c for c in report["checks"] if c["section"] == "Online"}
    assert {name: c["status"] for name, c in online.items()} == {
        "janus server": "missing",
        "model host": "missing",
    }
    assert code == 1
    assert not any(c["section"] == "Online" for c in doctor_json("--for", "join")[1]["checks"])


# --- the real command on this machine ----------------------------------------------------------------


def test_real_doctor_for_demo_on_this_machine(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_"))
    }
    env["OPENAI_API_KEY"] = FAKE_KEY
    done = subprocess.run(
        [sys.executable, "-m", "translator_bot", "doctor", "--for", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for pattern in (
        r"^  ok +python +3\.\d+",
        r"^  ok +aiortc +\d",
        r"^  ok +av +\d",
        r"^  ok +openai +\d",
        r"^  ok +demo extra +librosa, scipy, soxr$",
        r"^  ok +janus +/\S+/janus \d+\.\d+\.\d+$",
        r"^  ok +janus plugins +VideoRoom and WebSockets in /",
        r"^  ok +ip +/\S+/ip$",
        r"^  ok +private network +a network namespace can be made",
        r"^  ok +recordings +12 recordings \(de, en, es\) in /",
        r"^  ok +settings +valid \(no \.env file\)$",
        r"^  ok +credentials +OPENAI_API_KEY sk-…\(set, 36 chars\)$",
        r"^  OPENAI_API_KEY +sk-…\(set, 36 chars\) +env$",
        r"^demo: ready$",
    ):
        assert re.search(pattern, out, re.M), f"{pattern!r} not in:\n{out}"
    assert FAKE_KEY not in out and FAKE_KEY not in done.stderr


def test_azure_entra_token_organization_and_project(monkeypatch):
    token = "eyJ0eXAi.entra-token-body.sig"
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "rt")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", token)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-0123456789")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-Visible01")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_visible02")
    code, text = doctor("--for", "join")
    assert code == 0, text
    assert "entra-token-body" not in text and "azure-key-0123456789" not in text
    # The secret is masked in its row; the organization and project are not secrets and show in full.
    assert re.search(rf"AZURE_OPENAI_AD_TOKEN +\(set, {len(token)} chars\)", text), text
    assert re.search(r"OPENAI_ORG_ID +org-Visible01", text) and re.search(
        r"OPENAI_PROJECT_ID +proj_visible02", text
    )
    credentials = by_name_json(doctor_json("--for", "join")[1])["credentials"]
    assert credentials["status"] == "ok"
    assert credentials["detail"].startswith(
        f"AZURE_OPENAI_AD_TOKEN (set, {len(token)} chars), sent as Authorization"
    )
    assert "the token wins" in credentials["detail"]
    assert "OpenAI-Organization org-Visible01, OpenAI-Project proj_visible02" in credentials["detail"]


def test_the_provider_line_names_the_transcription_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    provider = by_name_json(doctor_json("--for", "join")[1])["provider"]["detail"]
    assert "transcription gpt-realtime-whisper (the engine's default)" in provider
    monkeypatch.setenv("TRANSLATOR_TRANSCRIPTION_MODEL", "gpt-4o-mini-transcribe")
    monkeypatch.setenv("TRANSLATOR_ENGINE", "realtime")
    provider = by_name_json(doctor_json("--for", "join")[1])["provider"]["detail"]
    assert "gpt-realtime, transcription gpt-4o-mini-transcribe" in provider
