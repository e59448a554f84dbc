"""Language tags: one normal form for every way a participant or a setting may name a language.

`es-MX`, `ES`, `es_mx`, `spa` and `Spanish` all name Spanish; lanes compare the base language
(`es`) so two Spanish speakers with different regions share a language, while the full tag is kept
for display and for the translation endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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
        name=langcodes.Language.get(base).display_name("en"),
        display=normal.display_name("en"),
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
    return not lang.language_name("en").startswith("Unknown language")
