"""The meeting's glossary (`TRANSLATOR_GLOSSARY`): terms the interpreter keeps as they are, and terms
with a fixed translation per target language.

The file is TOML (read by the standard library, no dependency), e.g.:

    keep = ["Kubernetes", "Acme Cloud"]      # said as they are in every language
    keep_names = true                         # participants' names untranslated (the default)

    [translate.es]                            # when interpreting into Spanish
    "invoice" = "factura"
    [translate.de]
    "invoice" = "Rechnung"

Only the `realtime` engine can use it (it goes into the model's instructions); the `translate`
endpoint takes no prompt. Terms are the operator's, but they still become part of a model prompt,
so they are cleaned like participant names and bounded in number and length.
"""

from __future__ import annotations

import logging
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from translator_bot.languages import Language, UnknownLanguageError, parse_language

log = logging.getLogger(__name__)

MAX_TERMS = 200  # keeps the instructions (paid for as input tokens on every response) small
MAX_TERM_CHARS = 80
_ALLOWED_KEYS = {"keep", "keep_names", "translate"}
_NOT_TERM = set('"`<>{}[]\\')


class GlossaryError(ValueError):
    """A glossary file that cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True)
class Glossary:
    keep: tuple[str, ...] = ()
    # target language tag (normalised) -> ((term, translation), ...)
    translations: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    keep_names: bool = True

    def fixed_for(self, target: Language) -> tuple[tuple[str, str], ...]:
        """Fixed translations into `target`: its exact tag (es-MX) wins over its base language (es)."""
        exact = self.translations.get(target.tag)
        if exact is not None:
            return exact
        return self.translations.get(target.base, ())


def _term(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise GlossaryError(f"{where}: expected a text term in quotes, got {value!r}")
    text = " ".join("".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in value).split())
    if not text:
        raise GlossaryError(f"{where}: empty term")
    if len(text) > MAX_TERM_CHARS:
        raise GlossaryError(f"{where}: term longer than {MAX_TERM_CHARS} characters: {text[:40]!r}...")
    if _NOT_TERM & set(text):
        raise GlossaryError(f"{where}: quotes, brackets and backslashes are not allowed in a term: {text!r}")
    return text


def parse_glossary(text: str, source: str = "glossary") -> Glossary:
    """Parse glossary TOML; raise GlossaryError naming the file, the place and the fix."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GlossaryError(f"{source} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _ALLOWED_KEYS)
    if unknown:
        raise GlossaryError(
            f"{source}: unknown key(s) {unknown}; expected keep, keep_names, [translate.<lang>]"
        )
    keep_raw = data.get("keep", [])
    if not isinstance(keep_raw, list):
        raise GlossaryError(f'{source}: keep must be a list of terms, e.g. keep = ["Kubernetes"]')
    keep = tuple(dict.fromkeys(_term(v, f"{source}: keep[{i}]") for i, v in enumerate(keep_raw)))
    keep_names = data.get("keep_names", True)
    if not isinstance(keep_names, bool):
        raise GlossaryError(f"{source}: keep_names must be true or false")
    table = data.get("translate", {})
    if not isinstance(table, dict):
        raise GlossaryError(
            f'{source}: translate must be tables such as [translate.es] "invoice" = "factura"'
        )
    translations: dict[str, tuple[tuple[str, str], ...]] = {}
    for lang_key, pairs in table.items():
        where = f"{source}: [translate.{lang_key}]"
        try:
            lang = parse_language(lang_key)
        except UnknownLanguageError as exc:
            raise GlossaryError(f"{where}: {exc}") from None
        if not isinstance(pairs, dict):
            raise GlossaryError(f'{where}: expected lines such as "invoice" = "factura"')
        if lang.tag in translations:
            raise GlossaryError(f"{where}: language given twice")
        translations[lang.tag] = tuple(
            (_term(term, f"{where} key"), _term(value, f"{where} {term!r}")) for term, value in pairs.items()
        )
    count = len(keep) + max((len(p) for p in translations.values()), default=0)
    if count > MAX_TERMS:
        raise GlossaryError(f"{source}: {count} terms for one language; at most {MAX_TERMS} are allowed")
    return Glossary(keep=keep, translations=translations, keep_names=keep_names)


@lru_cache(maxsize=4)
def load_glossary(path: Path) -> Glossary:
    """Read and parse the file once per process (settings validation and every lane share it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GlossaryError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GlossaryError(f"{path}: cannot be read as UTF-8 text: {exc}") from None
    return parse_glossary(text, str(path))


_warned_unused = False


def warn_unused_once(engine: str) -> None:
    """The glossary is set but the engine cannot take it: say so once per process, not per lane."""
    global _warned_unused
    if not _warned_unused:
        _warned_unused = True
        log.warning(
            "TRANSLATOR_GLOSSARY is ignored by the %s engine (its endpoint takes no prompt); "
            "use TRANSLATOR_ENGINE=realtime to apply it",
            engine,
        )
