"""Settings precedence, validation messages, secret hygiene and the CLI's exit codes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from translator_bot.cli import build_parser, main
from translator_bot.engine.endpoint import endpoint_for, websocket_url
from translator_bot.errors import ExitCode, SettingsError
from translator_bot.settings import Settings, load_settings
from translator_bot.settings_flags import SETTINGS_FLAGS, add_settings_flags, flag_overrides

SECRET = "sk-test-very-secret-123456"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./.env


def test_defaults_are_usable_without_any_file():
    s = load_settings()
    assert s.effective_engine == "translate"
    assert s.openai_base_url == "https://api.openai.com/v1"
    assert s.default_language == "en"
    assert s.ice_servers == []  # no public STUN server unless configured


def test_precedence_default_dotenv_env_flag(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        "TRANSLATOR_VOICE=cedar\nTRANSLATOR_DEFAULT_LANGUAGE=de\nOPENAI_API_KEY=sk-env-file\n"
    )
    assert load_settings().voice == "cedar"
    monkeypatch.setenv("TRANSLATOR_VOICE", "ash")
    s = load_settings()
    assert s.voice == "ash" and s.default_language == "de"
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == "sk-env-file"
    assert load_settings({"default_language": "Spanish"}).default_language == "es"


def test_ice_servers_from_comma_list_or_json(monkeypatch):
    monkeypatch.setenv("TRANSLATOR_ICE_SERVERS", "stun:stun.example.org:3478, turn:turn.example.org:3478")
    assert load_settings().ice_servers == ["stun:stun.example.org:3478", "turn:turn.example.org:3478"]
    monkeypatch.setenv("TRANSLATOR_ICE_SERVERS", '["turns:t.example.org:5349"]')
    assert load_settings().ice_servers == ["turns:t.example.org:5349"]
    monkeypatch.setenv("TRANSLATOR_ICE_SERVERS", "http://nope")
    with pytest.raises(SettingsError, match="TRANSLATOR_ICE_SERVERS"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("TRANSLATOR_METRICS_PORT", "abc", "TRANSLATOR_METRICS_PORT: Input should be a valid integer"),
        ("TRANSLATOR_METRICS_PORT", "70000", "TRANSLATOR_METRICS_PORT: Input should be less than or equal"),
        (
            "TRANSLATOR_ENGINE",
            "whisper",
            "TRANSLATOR_ENGINE: Input should be 'translate', 'realtime' or 'passthrough'",
        ),
        ("TRANSLATOR_DEFAULT_LANGUAGE", "xx", "TRANSLATOR_DEFAULT_LANGUAGE: 'xx' is not a known language"),
        ("OPENAI_BASE_URL", "api.openai.com", "OPENAI_BASE_URL: expected an http(s):// or ws(s):// URL"),
        ("TRANSLATOR_LOG_FORMAT", "xml", "TRANSLATOR_LOG_FORMAT: Input should be 'text' or 'json'"),
    ],
)
def test_a_wrong_setting_names_itself_in_one_line(monkeypatch, env, value, expected):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_flag_errors_name_the_flag():
    with pytest.raises(SettingsError, match=r"^--default-language: 'qq' is not a known language"):
        load_settings({"default_language": "qq"})


def test_secrets_never_printed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("TRANSLATOR_JANUS_API_SECRET", "janus-secret-value")
    s = load_settings()
    for text in (repr(s), str(s), s.model_dump_json(), repr(endpoint_for(s, "translate"))):
        assert SECRET not in text and "janus-secret-value" not in text


def test_missing_key_is_a_settings_error_naming_the_variable():
    with pytest.raises(SettingsError, match=r"^OPENAI_API_KEY is not set"):
        load_settings().require_provider_credentials()


def test_websocket_url_follows_the_sdk_rule():
    assert websocket_url("https://api.openai.com/v1", "/realtime", {"model": "gpt-realtime"}) == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )
    assert websocket_url("http://127.0.0.1:8765/v1/", "/realtime/translations", {"model": "m"}) == (
        "ws://127.0.0.1:8765/v1/realtime/translations?model=m"
    )


def test_openai_endpoints(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    s = load_settings()
    translate = endpoint_for(s, "translate")
    assert translate.url == "wss://api.openai.com/v1/realtime/translations?model=gpt-realtime-translate"
    assert translate.headers() == {"Authorization": f"Bearer {SECRET}"}
    assert endpoint_for(s, "realtime").url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def test_azure_defaults_to_realtime_and_uses_the_ga_url(monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-123")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "my-rt")
    s = load_settings()
    assert s.effective_engine == "realtime"
    ep = endpoint_for(s, "realtime")
    assert ep.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-rt"
    assert ep.headers() == {"api-key": "azure-key-123"}
    monkeypatch.setenv("TRANSLATOR_ENGINE", "translate")
    with pytest.raises(SettingsError, match="not offered by Azure"):
        load_settings()


def test_settings_object_accepts_secretstr_directly():
    s = Settings(openai_api_key=SecretStr("k"))
    assert s.openai_api_key is not None


def test_env_example_lists_every_setting():
    text = (ROOT / ".env.example").read_text()
    from translator_bot.settings import env_name

    missing = [env_name(f) for f in Settings.model_fields if env_name(f) not in text]
    assert not missing, f".env.example lacks {missing}"


def test_cli_exit_codes(monkeypatch, capsys):
    assert main(["join", "1234"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OPENAI_API_KEY" in err
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("TRANSLATOR_METRICS_PORT", "-1")
    assert main(["join", "1234"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "TRANSLATOR_METRICS_PORT" in err and SECRET not in err
    with pytest.raises(SystemExit) as info:
        main(["join"])  # usage error from argparse
    assert info.value.code == ExitCode.USAGE


def test_help_and_version_from_a_real_process():
    cmd = [sys.executable, "-m", "translator_bot"]
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=True).stdout
    assert "join" in out and "exit codes" in out and "fake-realtime" in out
    out = subprocess.run([*cmd, "join", "--help"], capture_output=True, text=True, check=True).stdout
    assert "MEETING_ID" in out and "--create-room" in out
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("translator-bot ")
    assert build_parser().prog == "translator-bot"


def test_secret_values_are_every_secret_setting_that_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-one-1111")
    monkeypatch.setenv("TRANSLATOR_JANUS_API_SECRET", "janus-two-2222")
    monkeypatch.setenv("TRANSLATOR_TURN_PASSWORD", "turn-three-3333")
    settings = load_settings()
    assert sorted(settings.secret_values()) == ["janus-two-2222", "sk-one-1111", "turn-three-3333"]


def test_join_doctor_and_web_share_one_declaration_of_the_settings_flags() -> None:
    parser = build_parser()
    argv = ["--env-file", "x.env", "--engine", "passthrough", "--output", "mixed", "--metrics-port", "0"]
    join = parser.parse_args(["join", "1234", *argv])
    doctor = parser.parse_args(["doctor", *argv])
    for args in (join, doctor):
        assert flag_overrides(args) == {
            **dict.fromkeys(SETTINGS_FLAGS),
            "engine": "passthrough",
            "output_mode": "mixed",
            "metrics_port": 0,
        }
        assert args.env_file == Path("x.env")
    # The page server takes only what it passes on to the bots it starts: never their ops port.
    web = parser.parse_args(["web", "--engine", "passthrough", "--log-level", "debug"])
    assert (web.engine, web.log_level) == ("passthrough", "DEBUG")
    with pytest.raises(SystemExit):
        parser.parse_args(["web", "--metrics-port", "9464"])


def test_a_settings_flag_subset_must_name_real_flags() -> None:
    import argparse

    with pytest.raises(ValueError, match="no settings flag for \\['metrics'\\]"):
        add_settings_flags(argparse.ArgumentParser(), only=("engine", "metrics"))


def test_lanes_open_is_a_flag_and_auto_follows_the_output_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    args = parser.parse_args(["join", "1234", "--lanes-open", "speech"])
    assert flag_overrides(args)["lanes_open"] == "speech"
    with pytest.raises(SystemExit):
        parser.parse_args(["join", "1234", "--lanes-open", "later"])
    monkeypatch.setenv("TRANSLATOR_OUTPUT_MODE", "per-language")
    assert load_settings().effective_lanes_open == "speech"
    monkeypatch.setenv("TRANSLATOR_LANES_OPEN", "join")
    assert load_settings().effective_lanes_open == "join"
