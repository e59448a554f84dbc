"""`demo` reads the model provider's settings from .env (or --env-file) as `join` does.

A key kept in ./.env (as the README suggests) must make `demo` use the real API and reach the bot,
which runs in another directory and so cannot read that file itself; the environment wins over the
file; the file's other settings (the operator's own Janus, ports) stay out of the demo.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from translator_bot import demo
from translator_bot.demo.provider_env import EnvFileError, read_provider_environment
from translator_bot.demo.runner import DemoConfig

KEY = "sk-demo-dotenv-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TRANSLATOR_", "OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def args(**given: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {
        "model": "auto",
        "engine": None,
        "languages": "en,es",
        "turns": 1,
        "env_file": None,
        "network": "auto",
        "log_level": "WARNING",
        "turn_timeout": 1.0,
        "output_dir": Path("demo-output"),
    }
    return argparse.Namespace(**{**defaults, **given})


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[DemoConfig]:
    """Runs `demo.run` up to the meeting: the DemoConfig it would run with is kept instead."""
    import translator_bot.demo.network as network
    import translator_bot.demo.runner as runner

    configs: list[DemoConfig] = []

    async def fake_run_demo(config: DemoConfig, _show: Any) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr(shutil, "which", lambda _name: "/usr/bin/janus")
    monkeypatch.setattr(network, "prepare_network", lambda *_a, **_k: object())
    monkeypatch.setattr(runner, "run_demo", fake_run_demo)
    import translator_bot.logs as logs

    monkeypatch.setattr(logs, "configure_logging", lambda *_a: None)
    return configs


def test_a_key_in_dotenv_selects_the_real_api_and_reaches_the_bot(
    tmp_path: Path, captured: list[DemoConfig]
) -> None:
    (tmp_path / ".env").write_text(
        f"OPENAI_API_KEY={KEY}\nOPENAI_ORG_ID=org-demo\nTRANSLATOR_JANUS_URL=wss://prod.example/\n"
    )
    assert demo.run(args()) == 0
    config = captured[0]
    assert config.provider == "openai" and config.engine == "translate"
    # The bot runs in another directory: what only the file says is handed to it, the rest is not.
    assert dict(config.bot_env) == {"OPENAI_API_KEY": KEY, "OPENAI_ORG_ID": "org-demo"}


def test_azure_with_an_entra_token_in_an_env_file(tmp_path: Path, captured: list[DemoConfig]) -> None:
    env_file = tmp_path / "azure.env"
    env_file.write_text(
        "AZURE_OPENAI_ENDPOINT=https://res.openai.azure.com\nAZURE_OPENAI_AD_TOKEN=eyJ.tok.en\n"
    )
    assert demo.run(args(env_file=env_file)) == 0
    config = captured[0]
    assert (config.provider, config.engine) == ("openai", "realtime")
    assert config.bot_env["AZURE_OPENAI_AD_TOKEN"] == "eyJ.tok.en"


def test_without_any_key_the_fake_is_used_and_the_file_is_not_passed(
    tmp_path: Path, captured: list[DemoConfig]
) -> None:
    (tmp_path / ".env").write_text("OPENAI_BASE_URL=https://proxy.example/v1\n")
    assert demo.run(args()) == 0
    assert captured[0].provider == "fake" and dict(captured[0].bot_env) == {}


def test_model_openai_with_the_key_only_in_dotenv_is_not_refused(
    tmp_path: Path, captured: list[DemoConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    assert demo.run(args(model="openai")) == 0, capsys.readouterr().err
    assert KEY not in capsys.readouterr().err


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-file\nopenai_project_id=proj_file\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    found = read_provider_environment(None, os.environ)
    assert found.get("OPENAI_API_KEY") == "sk-from-env"
    assert found.from_file == {"OPENAI_PROJECT_ID": "proj_file"}  # names match case-insensitively


def test_a_missing_env_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EnvFileError):
        read_provider_environment(tmp_path / "nope.env", {})
    assert demo.run(args(env_file=tmp_path / "nope.env")) == 2
    assert "--env-file: no such file" in capsys.readouterr().err


def test_the_demo_parser_has_env_file() -> None:
    parser = argparse.ArgumentParser()
    demo.configure_parser(parser)
    assert parser.parse_args(["--env-file", "x.env"]).env_file == Path("x.env")
