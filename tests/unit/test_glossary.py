"""The glossary file: its TOML format, the errors a bad file gives, and where it reaches the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.test_engine_fake import fake, make, pcm_of, silence, speak_and_collect  # noqa: F401
from tests.unit.test_engine_realtime import INTO, KEY
from translator_bot.engine.base import LaneSpec, TranslatedAudio
from translator_bot.engine.instructions import build_instructions
from translator_bot.errors import SettingsError
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.glossary import MAX_TERMS, Glossary, GlossaryError, parse_glossary
from translator_bot.languages import parse_language
from translator_bot.settings import Settings, load_settings

GLOSSARY = """
keep = ["Kubernetes", "Acme Cloud"]

[translate.es]
"invoice" = "factura"
"on-call" = "de guardia"

[translate.es-MX]
"invoice" = "recibo"

[translate.de]
"invoice" = "Rechnung"
"""


def spec(target: str = "es", speaker: str = "Ana", listener: str = "Beatriz") -> LaneSpec:
    return LaneSpec("l1", speaker, parse_language("en"), listener, parse_language(target))


def test_parses_kept_terms_and_translations_per_language() -> None:
    g = parse_glossary(GLOSSARY)
    assert g.keep == ("Kubernetes", "Acme Cloud") and g.keep_names
    assert g.fixed_for(parse_language("es")) == (("invoice", "factura"), ("on-call", "de guardia"))
    assert g.fixed_for(parse_language("es-MX")) == (("invoice", "recibo"),)  # the exact tag wins
    assert g.fixed_for(parse_language("es-AR")) == g.fixed_for(parse_language("es"))  # else the base
    assert g.fixed_for(parse_language("fr")) == ()
    assert parse_glossary('[translate.Spanish]\n"a" = "b"').fixed_for(parse_language("es")) == (("a", "b"),)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("keep = [", "not valid TOML"),
        ('keeps = ["x"]', "unknown key(s) ['keeps']"),
        ('keep = "Kubernetes"', "keep must be a list"),
        ("keep = [1]", "keep[0]: expected a text term"),
        ('keep = ["say \\"hi\\""]', "quotes, brackets"),
        ('[translate.xx-nope]\n"a" = "b"', "[translate.xx-nope]"),
        ('[translate.es]\n"a" = 3', "[translate.es] 'a': expected a text term"),
        ('keep_names = "yes"', "keep_names must be true or false"),
        ("keep = [" + ",".join(f'"t{i}"' for i in range(MAX_TERMS + 1)) + "]", f"at most {MAX_TERMS}"),
    ],
)
def test_bad_files_say_where_and_how_to_fix(text: str, says: str) -> None:
    with pytest.raises(GlossaryError) as info:
        parse_glossary(text, "g.toml")
    assert str(info.value).startswith("g.toml") and says in str(info.value)


def test_a_bad_file_stops_the_settings_with_the_setting_named(tmp_path: Path, monkeypatch: Any) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('keep = "Kubernetes"\n')
    monkeypatch.setenv("TRANSLATOR_GLOSSARY", str(bad))
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=empty_env(tmp_path))
    assert "TRANSLATOR_GLOSSARY" in str(info.value) and "keep must be a list" in str(info.value)
    monkeypatch.setenv("TRANSLATOR_GLOSSARY", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=empty_env(tmp_path))
    assert "no such file" in str(info.value)


def test_instructions_carry_the_glossary_for_their_target_only() -> None:
    g = parse_glossary(GLOSSARY)
    text = build_instructions(spec("es"), g)
    assert '"Kubernetes", "Acme Cloud"' in text and "untranslated" in text
    assert '"invoice" -> "factura"; "on-call" -> "de guardia"' in text
    assert "Rechnung" not in text and "recibo" not in text
    assert INTO.search(text).group(1) == "Spanish"  # type: ignore[union-attr]
    assert text.splitlines()[-1].startswith("Context:")  # the context line stays last
    assert '"recibo"' in build_instructions(spec("es-MX"), g)


def test_names_are_kept_untranslated_by_default_and_the_file_can_turn_it_off() -> None:
    plain = build_instructions(spec(speaker="Rosa Blanco", listener="Hans"))
    assert "Never translate or adapt people's names" in plain and '"Rosa Blanco", "Hans"' in plain
    off = build_instructions(spec(speaker="Rosa Blanco"), Glossary(keep_names=False))
    assert "Never translate or adapt" not in off
    nameless = build_instructions(spec(speaker="", listener=""))
    assert "Never translate or adapt" not in nameless  # fallbacks are not names


def test_the_translate_engine_warns_once_that_it_cannot_apply_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    from translator_bot import glossary as glossary_module
    from translator_bot.engine.options import EngineOptions
    from translator_bot.engine.translate import TranslateEngine

    path = tmp_path / "glossary.toml"
    path.write_text(GLOSSARY, encoding="utf-8")
    monkeypatch.setattr(glossary_module, "_warned_unused", False)
    s = Settings(openai_api_key=SecretStr(KEY), engine="translate", glossary=path)
    engines = [(TranslateEngine(EngineOptions.from_settings(s)), spec(t)) for t in ("es", "de")]
    with caplog.at_level("WARNING"):
        for engine, lane in engines:
            engine.session_config(lane)
            engine.session_config(lane)
    warnings = [r for r in caplog.records if "TRANSLATOR_GLOSSARY is ignored" in r.getMessage()]
    assert len(warnings) == 1 and "translate engine" in warnings[0].getMessage()


def empty_env(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


async def test_the_faithful_fake_accepts_the_glossary_instructions_and_still_interprets(
    fake: FakeRealtimeServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "glossary.toml"
    path.write_text(GLOSSARY, encoding="utf-8")
    session = make(fake, "realtime", glossary=path)
    await session.start()
    try:
        out = await speak_and_collect(session, silence(300) + pcm_of("u2-en") + silence(4000), 1, 30)
    finally:
        await session.aclose()
    record = fake.state.sessions[0]
    assert record.recognised == ["u2-en"] and record.target_language in ("es", "Spanish")
    assert any(isinstance(e, TranslatedAudio) for e in out)
    assert fake.state.all_violations() == []  # every client event valid against the SDK's models
