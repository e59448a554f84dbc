"""Who a room participant is and which language they speak, from whatever the room tells us.

Pure functions: no I/O, no logging. Sources, first usable one wins for each field:
1. publisher `metadata` (Janus >= 1.3), a JSON object such as {"lang": "es", "name": "Beatriz"};
2. a stream `description` holding the same JSON (Janus 1.1 relays descriptions, not metadata);
3. the display-name convention `Beatriz [es]`;
4. the configured default language.
A value that is present but unusable (unknown language, wrong type) is reported in `problems` and the
next source is tried, so garbage in a room never stops the bot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from translator_bot.languages import Language, UnknownLanguageError, parse_language

ParticipantId = int | str
LanguageSource = Literal["metadata", "description", "display", "default"]
Role = Literal["participant", "interpreter"]

INTERPRETER_ROLE = "interpreter"
_MAX_FIELD = 200  # display names and descriptions longer than this are cut, never trusted whole
_MAX_DESCRIPTION = 4096
_LANG_KEYS = ("lang", "language", "locale")
_NAME_KEYS = ("name", "display")
# "Beatriz [es]" or "Beatriz [es-MX]"; "[bot]" marks another interpreter's control participant.
_DISPLAY_TAG = re.compile(r"^(?P<name>.*?)\s*\[(?P<tag>[^\[\]]{1,40})\]\s*$")
# The readable name of an interpreter feed: "Interpreter -> Beatriz (es)".
_INTERPRETER_DISPLAY = re.compile(r"^.+\s->\s.+\(\s*[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\s*\)\s*$")
_BOT_TAGS = frozenset({"bot", "interpreter"})


@dataclass(frozen=True)
class Participant:
    id: ParticipantId
    display: str | None
    name: str
    language: Language
    language_source: LanguageSource
    role: Role = "participant"
    for_participant: ParticipantId | None = None  # interpreter feeds: the listener they serve

    @property
    def is_interpreter(self) -> bool:
        return self.role == INTERPRETER_ROLE

    def describe(self) -> str:
        return f"{self.name} ({self.language.tag}, from {self.language_source})"


@dataclass(frozen=True)
class Problem:
    """A metadata value that was present but not usable; `key` lets callers report each one once."""

    source: LanguageSource
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.message)


@dataclass
class _Fields:
    lang: str | None = None
    name: str | None = None
    role: str | None = None
    for_participant: ParticipantId | None = None
    problems: list[Problem] = field(default_factory=list)


def clean_text(value: object, limit: int = _MAX_FIELD) -> str | None:
    """A printable, bounded string, or None for anything that is not a non-empty string."""
    if not isinstance(value, str):
        return None
    text = "".join(ch if ch.isprintable() else " " for ch in value[: limit * 4]).strip()
    text = " ".join(text.split())[:limit]
    return text or None


def parse_description(text: object) -> Mapping[str, Any] | None:
    """The JSON object a stream description holds, or None if it holds free text or nothing."""
    if not isinstance(text, str) or len(text) > _MAX_DESCRIPTION:
        return None
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _fields_from_object(obj: Mapping[str, Any], source: LanguageSource) -> _Fields:
    out = _Fields()
    for key in _LANG_KEYS:
        if key in obj:
            raw = obj[key]
            if isinstance(raw, str) and raw.strip():
                out.lang = raw
            else:
                out.problems.append(
                    Problem(source, f"{key!r} must be a language code string, got {_short(raw)}")
                )
            break
    for key in _NAME_KEYS:
        if key in obj:
            name = clean_text(obj[key])
            if name is not None:
                out.name = name
            break
    role = obj.get("role")
    if isinstance(role, str):
        out.role = role.strip().lower()
    target = obj.get("for")
    if isinstance(target, (int, str)) and not isinstance(target, bool):
        out.for_participant = target
    return out


def _fields_from_display(display: str | None) -> _Fields:
    out = _Fields()
    if display is None:
        return out
    match = _DISPLAY_TAG.match(display)
    if match is None:
        out.name = display
        if _INTERPRETER_DISPLAY.match(display):
            out.role = INTERPRETER_ROLE
        return out
    tag = match.group("tag").strip()
    out.name = match.group("name").strip() or display
    if tag.lower() in _BOT_TAGS:
        out.role = INTERPRETER_ROLE
    else:
        out.lang = tag
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _resolve_language(value: str, source: LanguageSource) -> tuple[Language | None, Problem | None]:
    try:
        return parse_language(value[:_MAX_FIELD]), None
    except UnknownLanguageError:
        return None, Problem(source, f"unknown language {_short(value)}")


def parse_participant(
    participant_id: ParticipantId,
    *,
    display: object = None,
    metadata: object = None,
    descriptions: Sequence[object] = (),
    default_language: Language,
) -> tuple[Participant, list[Problem]]:
    """Build a Participant from raw room data; never raises on garbage, reports it in problems."""
    display_text = clean_text(display)
    candidates: list[tuple[LanguageSource, _Fields]] = []
    if isinstance(metadata, dict):
        candidates.append(("metadata", _fields_from_object(metadata, "metadata")))
    elif isinstance(metadata, str) and (parsed := parse_description(metadata)) is not None:
        candidates.append(("metadata", _fields_from_object(parsed, "metadata")))
    elif metadata is not None:
        candidates.append(
            ("metadata", _Fields(problems=[Problem("metadata", f"not an object: {_short(metadata)}")]))
        )
    for description in descriptions:
        obj = parse_description(description)
        if obj is not None:
            candidates.append(("description", _fields_from_object(obj, "description")))
    candidates.append(("display", _fields_from_display(display_text)))

    problems: list[Problem] = []
    language: Language | None = None
    language_source: LanguageSource = "default"
    name: str | None = None
    role: str | None = None
    for_participant: ParticipantId | None = None
    for source, fields in candidates:
        problems.extend(fields.problems)
        if language is None and fields.lang is not None:
            language, problem = _resolve_language(fields.lang, source)
            if problem is not None:
                problems.append(problem)
            elif language is not None:
                language_source = source
        name = name or fields.name
        role = role or fields.role
        if for_participant is None:
            for_participant = fields.for_participant
    return (
        Participant(
            id=participant_id,
            display=display_text,
            name=name or f"participant {participant_id}",
            language=language or default_language,
            language_source=language_source,
            role="interpreter" if role == INTERPRETER_ROLE else "participant",
            for_participant=for_participant if role == INTERPRETER_ROLE else None,
        ),
        problems,
    )


# Whom an interpreter feed is for: one listener, the listeners of a language (a per-language feed, one
# encoded stream for all of them), or None: everyone in the room (the mixed feed).
Listeners = Participant | tuple[Participant, ...] | None
FeedFor = ParticipantId | list[ParticipantId] | None
_MAX_FEED_LISTENERS = 1000  # a `for` list longer than this is garbage, not an audience


def listener_ids(listeners: Listeners) -> FeedFor:
    """The `for` value of a feed's description: an id, a list of ids, or None (everyone)."""
    if isinstance(listeners, tuple):
        return [p.id for p in listeners]
    return listeners.id if listeners is not None else None


def interpreter_description(for_participant: FeedFor, language: Language) -> str:
    """The stream description that tells clients whom an interpreter feed is for:
    {"role":"interpreter","for":<id> | [<id>, ...] | null,"lang":<tag>}."""
    return json.dumps(
        {"role": INTERPRETER_ROLE, "for": for_participant, "lang": language.tag}, separators=(",", ":")
    )


def feed_is_for(described: Mapping[str, Any], participant_id: ParticipantId) -> bool:
    """Whether an interpreter feed's parsed description says it is for `participant_id`: its `for` is
    that id, a list holding it (a per-language feed), or null (a mixed feed, for everyone). The meeting
    page's `feedIsFor` (web/static/labels.js) reads the label the same way."""
    if described.get("role") != INTERPRETER_ROLE:
        return False
    target = described.get("for")
    if target is None:
        return True
    if isinstance(target, list):
        return any(_same_id(t, participant_id) for t in target[:_MAX_FEED_LISTENERS])
    return _same_id(target, participant_id)


def _same_id(a: object, b: ParticipantId) -> bool:
    # Janus ids are numbers, but a client may write them as strings: compare as text, never bools.
    return isinstance(a, (int, str)) and not isinstance(a, bool) and str(a) == str(b)


def interpreter_display(base: str, listener: Listeners, language: Language) -> str:
    """A readable feed name such as `Interpreter -> Beatriz (es)`, or for a per-language feed
    `Interpreter -> Spanish, 3 listeners (es)` (their ids are in the description: names would not fit)."""
    if listener is None:
        return f"{base} ({language.tag})"
    if isinstance(listener, tuple):
        # The count changes the display as people join and leave: Janus tells the room about a
        # publisher whose display changed, and clients then read the new description with it.
        count = f"{len(listener)} listener" + ("" if len(listener) == 1 else "s")
        return f"{base} -> {language.name}, {count} ({language.tag})"
    return f"{base} -> {listener.name} ({language.tag})"


def participant_display(name: str, language: Language | str) -> str:
    """The display-name convention a participant can use to declare a language: `Beatriz [es]`."""
    tag = language.tag if isinstance(language, Language) else language
    return f"{name} [{tag}]"


def participant_description(name: str, language: Language | str) -> str:
    tag = language.tag if isinstance(language, Language) else language
    return json.dumps({"lang": tag, "name": name}, separators=(",", ":"), ensure_ascii=False)
