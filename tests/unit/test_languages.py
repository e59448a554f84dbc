"""Language tags: the plain ones ("es", "pt-BR", "es-419") are parsed without langcodes, exactly as
langcodes parses them; everything else (names, scripts, 3-letter and replaced codes) goes through it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from translator_bot import languages
from translator_bot.languages import UnknownLanguageError, parse_language


def _plain_languages() -> list[str]:
    return sorted(code for code in languages._names()["language"] if re.fullmatch("[a-z]{2}", code))


def _territories() -> list[str]:
    return sorted(languages._names()["territory"])


def _by_langcodes(text: str) -> languages.Language | str:
    try:
        return languages._parse_with_langcodes(text, text)
    except UnknownLanguageError:
        return "unknown"


def test_every_plain_tag_parses_as_langcodes_parses_it() -> None:
    """Each two-letter language alone and with each region: the table's answer or no answer (then
    langcodes is asked), never a different one."""
    differ = []
    answered = 0
    for language in _plain_languages():
        for tag in [language] + [f"{language}-{territory}" for territory in _territories()]:
            plain = languages._parse_plain(tag)
            if plain is None:
                continue
            answered += 1
            if plain != _by_langcodes(tag):
                differ.append((tag, plain, _by_langcodes(tag)))
    assert differ == []
    assert answered > 50_000  # the fast path covers nearly all of them, not a handful


def test_the_codes_langcodes_replaces_are_left_to_it() -> None:
    """The two-letter codes and regions langcodes rewrites (iw -> he, BU -> MM): the list in the module
    is exactly those, so an upgrade of langcodes that adds one fails here."""
    replaced_languages = {
        code
        for code in _plain_languages()
        if _by_langcodes(code) in ("unknown",) or str(_by_langcodes(code)) != code
    }
    replaced_territories = {
        territory
        for territory in _territories()
        if str(_by_langcodes(f"en-{territory}")) != f"en-{territory}"
    }
    assert replaced_languages == languages.REPLACED_LANGUAGES
    assert replaced_territories == languages.REPLACED_TERRITORIES


@pytest.mark.parametrize("text", ["ES", "es_mx", "Pt-bR", " de-at ", "es-419", "EN-gb"])
def test_plain_tags_in_any_case_or_spelling(text: str) -> None:
    assert parse_language(text) == _by_langcodes(text.strip().replace("_", "-"))


@pytest.mark.parametrize(
    ("text", "tag", "name"),
    [("qu", "qu", "Quechua"), ("qu-PE", "qu-PE", "Quechua"), ("quc", "quc", "Kʼicheʼ")],
)
def test_languages_whose_codes_begin_with_q_are_languages(text: str, tag: str, name: str) -> None:
    """Only qaa-qtz are private use; Quechua (qu) and K'iche' (quc) have millions of speakers."""
    language = parse_language(text)
    assert (language.tag, language.name) == (tag, name)


@pytest.mark.parametrize("text", ["qaa", "qtz", "qaa-MX"])
def test_private_use_codes_are_refused(text: str) -> None:
    with pytest.raises(UnknownLanguageError):
        parse_language(text)


def test_a_plain_tag_does_not_load_langcodes() -> None:
    """langcodes' tables are ~3 MiB and ~50 ms of every bot's start; a room of plain tags needs none."""
    code = (
        "import sys; from translator_bot.languages import parse_language;"
        "[parse_language(t) for t in ('es-MX', 'en', 'PT_br', 'es-419', 'de')];"
        "print('langcodes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_names_and_other_codes_still_parse() -> None:
    assert parse_language("Spanish").tag == "es"
    assert parse_language("spa").tag == "es"
    assert parse_language("iw").tag == "he"
    assert parse_language("en-BU").tag == "en-MM"
    assert parse_language("zh-Hant-TW").display == "Chinese (Traditional, Taiwan)"
