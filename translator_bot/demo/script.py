"""The demo's conversation: who says which recorded sentence, and what the other person should hear."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from translator_bot.fixtures import RecordedUtterance

# One name per language the recordings speak, so the progress lines read like a meeting.
NAMES = {"en": "Ana", "es": "Beatriz", "de": "Dieter"}


class ScriptError(ValueError):
    """The requested languages or number of turns cannot be played from the recordings."""


@dataclass(frozen=True)
class Person:
    name: str
    language: str  # base subtag of the recordings, e.g. "es"


@dataclass(frozen=True)
class Turn:
    number: int  # 1-based
    speaker: Person
    listener: Person
    utterance_id: str  # what the speaker says
    text: str
    expected_id: str  # the recording of the same sentence in the listener's language
    expected_text: str


def people_for(languages: Sequence[str], recorded: Sequence[str]) -> tuple[Person, Person]:
    """Two people speaking the two languages asked for, each one a language the recordings have."""
    if len(languages) != 2:
        raise ScriptError(
            f"the demo needs exactly two languages, got {len(languages)}: {','.join(languages)}"
        )
    first, second = (lang.strip().lower() for lang in languages)
    for lang in (first, second):
        if lang not in recorded:
            raise ScriptError(f"no recordings in {lang!r}; the demo can speak {', '.join(sorted(recorded))}")
    if first == second:
        raise ScriptError(f"both people speak {first!r}: pick two different languages, e.g. en,es")
    return Person(NAMES.get(first, first.upper()), first), Person(NAMES.get(second, second.upper()), second)


def plan_turns(
    people: tuple[Person, Person],
    utterances: Sequence[RecordedUtterance],
    turns: int,
    *,
    translated: bool = True,
) -> list[Turn]:
    """Alternate speakers, each turn a different sentence (cycling), translated for the other person.

    `translated=False` (the pass-through engine) expects the listener to hear the sentence unchanged.
    """
    if turns < 1:
        raise ScriptError(f"--turns must be at least 1, got {turns}")
    by_id = {u.id: u for u in utterances}
    groups = sorted({u.group for u in utterances})
    plan: list[Turn] = []
    for index in range(turns):
        speaker, listener = people[index % 2], people[(index + 1) % 2]
        group = groups[index % len(groups)]
        said = by_id.get(f"{group}-{speaker.language}")
        if said is None or listener.language not in said.translations:
            raise ScriptError(
                f"sentence {group} is not recorded in both {speaker.language} and {listener.language}"
            )
        expected = by_id[said.translations[listener.language]] if translated else said
        plan.append(Turn(index + 1, speaker, listener, said.id, said.text, expected.id, expected.text))
    return plan
