"""Which lanes a meeting needs and who hears each one: pure decisions, no I/O.

A lane is one model session interpreting one speaker into one language. Listeners who share a
language (by base language: `es-MX` and `es-ES` are both Spanish) share the lane, so a third or
fourth participant adds at most one lane per new (speaker, language) pair, and two people who speak
the same language cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from translator_bot.languages import Language


@dataclass(frozen=True, slots=True)
class Member:
    """A participant as the planner sees it: who they are and what language they speak."""

    id: str
    name: str
    language: Language


@dataclass(frozen=True, slots=True)
class LaneKey:
    speaker_id: str
    target_base: str

    def __str__(self) -> str:
        return f"{self.speaker_id}->{self.target_base}"


@dataclass(frozen=True, slots=True)
class LanePlan:
    key: LaneKey
    speaker: Member
    target: Language  # the tag given to the model: the first listener's (e.g. es-MX), stable by id order
    listeners: tuple[Member, ...]  # ordered by id

    @property
    def listener_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.listeners)


def plan_lanes(members: Iterable[Member]) -> dict[LaneKey, LanePlan]:
    ordered = sorted({m.id: m for m in members}.values(), key=lambda m: m.id)
    plans: dict[LaneKey, LanePlan] = {}
    for speaker in ordered:
        by_language: dict[str, list[Member]] = {}
        for listener in ordered:
            if listener.id != speaker.id and not listener.language.same_language(speaker.language):
                by_language.setdefault(listener.language.base, []).append(listener)
        for base, listeners in by_language.items():
            key = LaneKey(speaker.id, base)
            plans[key] = LanePlan(key, speaker, listeners[0].language, tuple(listeners))
    return plans


@dataclass(frozen=True, slots=True)
class LaneChanges:
    opened: tuple[LanePlan, ...]
    closed: tuple[LaneKey, ...]
    changed: tuple[LanePlan, ...]  # same key, but target tag, names or listeners differ

    @property
    def empty(self) -> bool:
        return not (self.opened or self.closed or self.changed)


def diff_lanes(old: Mapping[LaneKey, LanePlan], new: Mapping[LaneKey, LanePlan]) -> LaneChanges:
    opened = tuple(plan for key, plan in new.items() if key not in old)
    closed = tuple(key for key in old if key not in new)
    changed = tuple(plan for key, plan in new.items() if key in old and old[key] != plan)
    return LaneChanges(opened, closed, changed)


def feeds_for(plans: Mapping[LaneKey, LanePlan], mode: str) -> dict[str, tuple[LaneKey, ...]]:
    """Output feeds to publish and which lanes each carries.

    `per-listener`: one feed per listener id, carrying only the lanes whose translation is for them
    (never their own speech). `mixed`: one feed ("mixed") carrying every lane, for clients that cannot
    pick a feed.
    """
    if mode == "mixed":
        return {"mixed": tuple(sorted(plans, key=str))} if plans else {}
    feeds: dict[str, list[LaneKey]] = {}
    for key, plan in plans.items():
        for listener in plan.listeners:
            feeds.setdefault(listener.id, []).append(key)
    return {listener: tuple(sorted(keys, key=str)) for listener, keys in sorted(feeds.items())}
