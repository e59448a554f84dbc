"""Language tags: one normal form for every way a participant or a setting may name a language.

`es-MX`, `ES`, `es_mx`, `spa` and `Spanish` all name Spanish; lanes compare the base language
(`es`) so two Spanish speakers with different regions share a language, while the full tag is kept
for display and for the translation endpoint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import langcodes
from langcodes.tag_parser import LanguageTagError


class UnknownLanguageError(ValueError):
    """The value does not name a language we can translate into or out of."""


@dataclass(frozen=True, slots=True)
class Language:
    tag: str  # normalised BCP-47, e.g. "es-MX"
    base: str  # language subtag only, e.g. "es": what decides whether two people need a lane
    name: str  # English name of the base language, e.g. "Spanish": used in instructions
    display: str  # English name with region/script, e.g. "Spanish (Mexico)"

    def __str__(self) -> str:
        return self.tag

    def same_language(self, other: Language) -> bool:
        return self.base == other.base


_MAX_LEN = 35  # longest sane BCP-47 tag; anything longer is garbage, not a language


@lru_cache(maxsize=512)
def parse_language(value: str) -> Language:
    """Normalise a language code or English/native name; raise UnknownLanguageError if it is none."""
    if not isinstance(value, str):
        raise UnknownLanguageError(f"expected a language code such as 'en' or 'es-MX', got {value!r}")
    text = value.strip().replace("_", "-")
    if not text or len(text) > _MAX_LEN:
        raise UnknownLanguageError(f"expected a language code such as 'en' or 'es-MX', got {value!r}")
    try:
        lang = langcodes.Language.get(text, normalize=True)
    except (LanguageTagError, ValueError):
        lang = _find_by_name(text, value)
    if not lang.is_valid() or lang.language in (None, "und") or lang.language.startswith("q"):
        raise UnknownLanguageError(f"{value!r} is not a known language code (try e.g. 'en', 'es', 'de-AT')")
    if not _has_name(lang):
        raise UnknownLanguageError(f"{value!r} is not a known language code (try e.g. 'en', 'es', 'de-AT')")
    # Prefer macrolanguages ("cmn" -> "zh") so the model and other participants agree on one code.
    normal = langcodes.Language.get(langcodes.standardize_tag(str(lang), macro=True))
    base = normal.language or ""
    return Language(
        tag=str(normal),
        base=base,
        name=english_display(langcodes.Language.get(base)),
        display=english_display(normal),
    )


def _find_by_name(text: str, original: str) -> langcodes.Language:
    if not text.replace(" ", "").isalpha():
        raise UnknownLanguageError(
            f"{original!r} is not a known language code or name (try e.g. 'en', 'es', 'de-AT')"
        )
    try:
        return langcodes.find(text)
    except LookupError as exc:
        raise UnknownLanguageError(
            f"{original!r} is not a known language code or name (try e.g. 'en', 'es', 'de-AT')"
        ) from exc


def _has_name(lang: langcodes.Language) -> bool:
    return not english_name("language", lang.language).startswith("Unknown language")


# --- English names ---------------------------------------------------------------------------------
# langcodes' `display_name("en")` loads the names of every subtag in every language (language_data's
# 4.6 MB name module: ~17 MiB and ~80 ms per bot) to pick the English ones. The same English names
# come from a table generated from langcodes itself (scripts/english-language-names.py; a unit test
# checks it against the installed libraries), composed the way langcodes composes them in English.

NAMES_PATH = Path(__file__).with_name("language_names_en.json")
_KINDS = {  # subtag kind -> (its shape, the code langcodes names an unknown subtag of that kind after)
    "language": (re.compile(r"[a-z]{2,8}"), "und"),
    "script": (re.compile(r"[A-Z][a-z]{3}"), "Zzzz"),
    "territory": (re.compile(r"[A-Z]{2}|[0-9]{3}"), "ZZ"),
}


@cache
def _names() -> dict[str, dict[str, str]]:
    names: dict[str, dict[str, str]] = json.loads(NAMES_PATH.read_text(encoding="utf-8"))
    return names


def english_name(kind: str, code: str | None) -> str:
    """The English name of one subtag, as langcodes gives it (`Unknown language [xx]` if it has none)."""
    table = _names()[kind]
    placeholder = _KINDS[kind][1]
    code = placeholder if code is None and kind == "language" else code
    if code in table:
        return table[code]
    return f"{table[placeholder]} [{code}]"


def english_display(lang: langcodes.Language) -> str:
    """`lang.display_name("en")` without loading every language's names: "Serbian (Latin, Serbia)"."""
    reduced = lang.simplify_script()
    extras = [english_name("script", reduced.script)] if reduced.script is not None else []
    if reduced.territory is not None:
        extras.append(english_name("territory", reduced.territory))
    name = english_name("language", reduced.language)
    return f"{name} ({', '.join(extras)})" if extras else name


def build_name_table() -> dict[str, dict[str, str]]:
    """Every subtag language_data names, named in English by langcodes (for NAMES_PATH)."""
    from language_data.name_data import CODE_TO_NAMES  # the 4.6 MB module the table avoids

    namers = {
        "language": lambda code: langcodes.Language.make(language=code).language_name("en"),
        "script": lambda code: langcodes.Language.make(script=code).script_name("en"),
        "territory": lambda code: langcodes.Language.make(territory=code).territory_name("en"),
    }
    table: dict[str, dict[str, str]] = {kind: {} for kind in _KINDS}
    for code in CODE_TO_NAMES:
        for kind, (shape, _) in _KINDS.items():
            if shape.fullmatch(code):
                table[kind][code] = namers[kind](code)
    return table
