"""English language names come from a generated table, not from langcodes' every-language names:
the same names, without ~17 MiB and ~80 ms per bot."""

from __future__ import annotations

import json
import subprocess
import sys

import langcodes
import pytest

from translator_bot.languages import (
    MORE_NAMES_PATH,
    NAMES_PATH,
    build_name_table,
    english_display,
    parse_language,
    split_name_table,
)


def test_the_table_matches_the_installed_libraries() -> None:
    # Fails after a langcodes/language_data upgrade until scripts/english-language-names.py is run.
    common, more = split_name_table(build_name_table())
    assert json.loads(NAMES_PATH.read_text(encoding="utf-8")) == common
    assert json.loads(MORE_NAMES_PATH.read_text(encoding="utf-8")) == more


def test_the_common_part_is_small_and_the_rest_is_read_only_when_named() -> None:
    common, more = split_name_table(build_name_table())
    assert len(common["language"]) < 200 < 8000 < len(more["language"])
    code = (
        "from translator_bot import languages as l; l.parse_language('es-MX'); l.parse_language('de');"
        "print(l._more_language_names.cache_info().currsize, l.parse_language('quc').name,"
        " l._more_language_names.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "Kʼicheʼ", "1"]


def _tags() -> list[str]:
    table = build_name_table()
    tags = list(table["language"])
    tags += [f"en-{t}" for t in table["territory"]]
    tags += [f"sr-{s}" for s in table["script"]]
    tags += ["zh-Hans", "zh-Hant-TW", "sr-Latn-RS", "es-419", "de-AT", "pt-BR", "xx", "en-QQ", "de-Qaaa"]
    return tags


def test_display_names_are_langcodes_english_names() -> None:
    differ = [
        (tag, english_display(langcodes.Language.get(tag)), langcodes.Language.get(tag).display_name("en"))
        for tag in _tags()
        if english_display(langcodes.Language.get(tag)) != langcodes.Language.get(tag).display_name("en")
    ]
    assert differ == []


@pytest.mark.parametrize(
    ("value", "display", "name"),
    [
        ("es-MX", "Spanish (Mexico)", "Spanish"),
        ("Spanish", "Spanish", "Spanish"),
        ("zh-Hant", "Chinese (Traditional)", "Chinese"),
    ],
)
def test_parse_language_names(value: str, display: str, name: str) -> None:
    lang = parse_language(value)
    assert (lang.display, lang.name) == (display, name)


def test_parsing_a_language_does_not_load_every_languages_names() -> None:
    code = (
        "import sys; from translator_bot.languages import parse_language; parse_language('es-MX');"
        "parse_language('Spanish'); print('language_data.name_data' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
