"""Language tags: one normal form for every way a participant or a setting may name a language.

`es-MX`, `ES`, `es_mx`, `spa` and `Spanish` all name Spanish; lanes compare the base language
(`es`) so two Spanish speakers with different regions share a language, while the full tag is kept
for display and for the translation endpoint.

langcodes does the parsing, but its tables cost every bot ~3 MiB and ~50 ms of start-up, and nearly
every tag a meeting sees is plain: a two-letter language, perhaps a region (`es`, `pt-BR`, `es-419`).
langcodes parses those to themselves (cased), except the codes it replaces (`iw` -> `he`, `BU` ->
`MM`), so they are parsed here from the English names table and langcodes is imported only for the
rest (names, scripts, three-letter and replaced codes). `tests/unit/test_languages.py` checks every
plain tag against langcodes, and that the replaced codes listed here are exactly langcodes' own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import langcodes


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
# The private-use language codes: "unknown" to the model and to every other participant.
_PRIVATE_USE = re.compile(r"q[a-t][a-z]")
_PLAIN_TAG = re.compile(r"([A-Za-z]{2})(?:-([A-Za-z]{2}|[0-9]{3}))?")
# Two-letter codes and regions langcodes rewrites (deprecated or merged ones); plain tags with them are
# left to langcodes. tests/unit/test_languages.py derives both sets from langcodes and compares.
REPLACED_LANGUAGES = frozenset({"bh", "in", "iw", "ji", "jw", "mo", "sh", "tl", "tw"})
REPLACED_TERRITORIES = frozenset({"AN", "BU", "CQ", "CS", "DD", "FX", "NT", "SU", "TP", "YD", "YU", "ZR"})


@lru_cache(maxsize=512)
def parse_language(value: str) -> Language:
    """Normalise a language code or English/native name; raise UnknownLanguageError if it is none."""
    if not isinstance(value, str):
        raise UnknownLanguageError(f"expected a language code such as 'en' or 'es-MX', got {value!r}")
    text = value.strip().replace("_", "-")
    if not text or len(text) > _MAX_LEN:
        raise UnknownLanguageError(f"expected a language code such as 'en' or 'es-MX', got {value!r}")
    return _parse_plain(text) or _parse_with_langcodes(text, value)


def _parse_plain(text: str) -> Language | None:
    """A two-letter language with perhaps a region, as langcodes would parse it; None for any other
    tag and for the codes langcodes replaces."""
    match = _PLAIN_TAG.fullmatch(text)
    if match is None:
        return None
    names = _names()
    language = match[1].lower()
    if language in REPLACED_LANGUAGES or language not in names["language"]:
        return None
    name = names["language"][language]
    if match[2] is None:
        return Language(tag=language, base=language, name=name, display=name)
    territory = match[2].upper()
    if territory in REPLACED_TERRITORIES or territory not in names["territory"]:
        return None
    display = f"{name} ({names['territory'][territory]})"
    return Language(tag=f"{language}-{territory}", base=language, name=name, display=display)


def _parse_with_langcodes(text: str, value: str) -> Language:
    import langcodes  # only for tags that are not plain (see the module doc)
    from langcodes.tag_parser import LanguageTagError

    try:
        lang = langcodes.Language.get(text, normalize=True)
    except (LanguageTagError, ValueError):
        lang = _find_by_name(text, value)
    if not lang.is_valid() or lang.language in (None, "und") or _PRIVATE_USE.fullmatch(lang.language):
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
    import langcodes

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
# The table is in two files: the names nearly every meeting needs (two-letter languages, scripts,
# regions: ~0.1 MiB loaded) and the other ~8,000 languages (~1 MiB loaded), read only when one is named.

NAMES_PATH = Path(__file__).with_name("language_names_en.json")
MORE_NAMES_PATH = Path(__file__).with_name("language_names_en_more.json")
_KINDS = {  # subtag kind -> (its shape, the code langcodes names an unknown subtag of that kind after)
    "language": (re.compile(r"[a-z]{2,8}"), "und"),
    "script": (re.compile(r"[A-Z][a-z]{3}"), "Zzzz"),
    "territory": (re.compile(r"[A-Z]{2}|[0-9]{3}"), "ZZ"),
}


@cache
def _names() -> dict[str, dict[str, str]]:
    """The common part of the table (see above)."""
    names: dict[str, dict[str, str]] = json.loads(NAMES_PATH.read_text(encoding="utf-8"))
    return names


@cache
def _more_language_names() -> dict[str, str]:
    names: dict[str, dict[str, str]] = json.loads(MORE_NAMES_PATH.read_text(encoding="utf-8"))
    return names["language"]


def english_name(kind: str, code: str | None) -> str:
    """The English name of one subtag, as langcodes gives it (`Unknown language [xx]` if it has none)."""
    table = _names()[kind]
    placeholder = _KINDS[kind][1]
    code = placeholder if code is None and kind == "language" else code
    if code in table:
        return table[code]
    if kind == "language" and code in _more_language_names():
        return _more_language_names()[code]
    return f"{table[placeholder]} [{code}]"


def english_display(lang: langcodes.Language) -> str:
    """`lang.display_name("en")` without loading every language's names: "Serbian (Latin, Serbia)"."""
    reduced = lang.simplify_script()
    extras = [english_name("script", reduced.script)] if reduced.script is not None else []
    if reduced.territory is not None:
        extras.append(english_name("territory", reduced.territory))
    name = english_name("language", reduced.language)
    return f"{name} ({', '.join(extras)})" if extras else name


NameTable = dict[str, dict[str, str]]  # subtag kind -> code -> English name


def split_name_table(table: NameTable) -> tuple[NameTable, NameTable]:
    """(common, more): NAMES_PATH's part and MORE_NAMES_PATH's part of the whole table."""
    common = {kind: dict(names) for kind, names in table.items()}
    more: dict[str, dict[str, str]] = {"language": {}}
    for code in table["language"]:
        if len(code) > 2 and code != _KINDS["language"][1]:  # the placeholder names unknown languages
            more["language"][code] = common["language"].pop(code)
    return common, more


def build_name_table() -> dict[str, dict[str, str]]:
    """Every subtag language_data names, named in English by langcodes (for NAMES_PATH and
    MORE_NAMES_PATH, split by `split_name_table`)."""
    import langcodes
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
