"""Which lanes a meeting needs and who hears each one: pure decisions, no I/O.

A lane is one model session interpreting one speaker into one language. Listeners who share a
language (by base language: `es-MX` and `es-ES` are both Spanish) share the lane, so a third or
fourth participant adds at most one lane per new (speaker, language) pair, and two people who speak
the same language cost nothing.

Two guards keep a meeting's cost and churn bounded whatever its participants do:

- `cap_lanes`: at most `max_lanes` lanes per meeting. Who is served first is decided by join order:
  a lane ranks by the later of its speaker's join position and its earliest listener's, so the
  people who came first are fully interpreted among themselves, and a newcomer never takes a lane
  away from people already served; lanes left out open as soon as capacity frees up.
- Lazy lanes (`TRANSLATOR_LANES_OPEN=speech`): only the lanes of speakers the bot has heard speak
  are planned (`plan_lanes(..., speakers=heard)`), so in a webinar the listeners who never speak
  open no model session and take no place under the cap; the cap then ranks among heard speakers,
  and a questioner who joined late is served before the silent early joiners. `awaiting_speech`
  names who would have lanes once heard: the meeting listens to them for their first words.
- `ChangeLimiter`: a lane key is opened, closed or re-configured at most once per `min_interval`
  seconds; further changes wait until then, so metadata flapping every 100 ms cannot open and
  close model sessions at that rate.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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


def plan_lanes(members: Iterable[Member], speakers: Container[str] | None = None) -> dict[LaneKey, LanePlan]:
    """Every lane the members need: one per speaker and language of their listeners. `speakers`: plan
    only the lanes of these speakers (those heard so far, with lazy lanes); None: everyone's."""
    ordered = sorted({m.id: m for m in members}.values(), key=lambda m: m.id)
    plans: dict[LaneKey, LanePlan] = {}
    for speaker in ordered:
        if speakers is not None and speaker.id not in speakers:
            continue
        by_language: dict[str, list[Member]] = {}
        for listener in ordered:
            if listener.id != speaker.id and not listener.language.same_language(speaker.language):
                by_language.setdefault(listener.language.base, []).append(listener)
        for base, listeners in by_language.items():
            key = LaneKey(speaker.id, base)
            plans[key] = LanePlan(key, speaker, listeners[0].language, tuple(listeners))
    return plans


def awaiting_speech(members: Iterable[Member], heard: Container[str]) -> frozenset[str]:
    """Members not heard yet who would speak into a lane once heard: someone of another language is
    there to listen."""
    listed = list(members)
    bases = {m.language.base for m in listed}
    return frozenset(m.id for m in listed if m.id not in heard and bases - {m.language.base})


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


LANGUAGE_FEED_PREFIX = "lang:"  # per-language feed ids: "lang:es"

# Who a feed is labelled for: one listener's id (per-listener), the ids of every listener of a
# language (per-language, ordered by id), or None: everyone (the mixed feed).
Audience = str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """One output feed: the lanes it carries, whom it is labelled for and (per-language) in which
    language; per-listener and mixed feeds take their listener's or the meeting's language."""

    lanes: tuple[LaneKey, ...]  # sorted by str
    audience: Audience
    language: Language | None = None


def plan_feeds(plans: Mapping[LaneKey, LanePlan], mode: str) -> dict[str, FeedPlan]:
    """Output feeds to publish, by feed id, and which lanes each carries.

    `per-listener`: one feed per listener id, carrying only the lanes whose translation is for them.
    `per-language`: one feed per target language ("lang:<base>"), carrying every lane into it and
    labelled with the ids of everyone it serves. Every listener of a language hears exactly what a
    per-listener feed would give them, because a lane into a language never has a speaker of that
    language (`plan_lanes`): nobody's own speech comes back to them translated, and one encoder
    serves the whole audience of a language. `mixed`: one feed ("mixed") carrying every lane.
    """
    if mode == "mixed":
        return {"mixed": FeedPlan(tuple(sorted(plans, key=str)), None)} if plans else {}
    if mode == "per-language":
        by_language: dict[str, list[LanePlan]] = {}
        for plan in plans.values():
            by_language.setdefault(plan.key.target_base, []).append(plan)
        feeds: dict[str, FeedPlan] = {}
        for base, lanes in sorted(by_language.items()):
            # A lane into a language never has a speaker of it, but while the change limiter holds
            # back a language switch (up to `min_interval`) a feed may still carry the old lane of
            # someone who now listens in it: they are left out of the audience until it closes, so
            # nobody is ever told to play their own speech translated back.
            speakers = {plan.speaker.id for plan in lanes}
            listeners = {m.id for plan in lanes for m in plan.listeners}
            audience = tuple(sorted(listeners - speakers))
            # The tag the model is given (es-MX for a room of Mexican listeners) labels the feed.
            language = min(lanes, key=lambda plan: str(plan.key)).target
            feeds[LANGUAGE_FEED_PREFIX + base] = FeedPlan(
                tuple(sorted((plan.key for plan in lanes), key=str)), audience, language
            )
        return feeds
    per_listener: dict[str, list[LaneKey]] = {}
    for key, plan in plans.items():
        for listener in plan.listeners:
            per_listener.setdefault(listener.id, []).append(key)
    return {
        listener: FeedPlan(tuple(sorted(keys, key=str)), listener)
        for listener, keys in sorted(per_listener.items())
    }


def feeds_for(plans: Mapping[LaneKey, LanePlan], mode: str) -> dict[str, tuple[LaneKey, ...]]:
    """The lanes each feed of `plan_feeds` carries, by feed id."""
    return {feed_id: feed.lanes for feed_id, feed in plan_feeds(plans, mode).items()}


@dataclass(frozen=True, slots=True)
class CappedPlan:
    plans: dict[LaneKey, LanePlan]  # the lanes to run
    left_out: tuple[LanePlan, ...]  # lanes the meeting needs that the cap leaves closed, best first


def lane_rank(plan: LanePlan, join_position: Mapping[str, int]) -> tuple[int, int, int, str]:
    """Sort key of a lane under the cap: lanes between earlier-joined people first."""
    last = len(join_position)
    speaker = join_position.get(plan.speaker.id, last)
    first_listener = min((join_position.get(m.id, last) for m in plan.listeners), default=last)
    return (max(speaker, first_listener), speaker, first_listener, plan.key.target_base)


def cap_lanes(
    plans: Mapping[LaneKey, LanePlan], join_order: Sequence[str], max_lanes: int | None
) -> CappedPlan:
    """Keep at most `max_lanes` of `plans` (None: no cap), ranked by `lane_rank` on `join_order`
    (participant ids, earliest first)."""
    if max_lanes is None or len(plans) <= max_lanes:
        return CappedPlan(dict(plans), ())
    position = {pid: i for i, pid in enumerate(join_order)}
    ranked = sorted(plans.values(), key=lambda plan: lane_rank(plan, position))
    kept = {plan.key: plan for plan in ranked[:max_lanes]}
    return CappedPlan({k: p for k, p in plans.items() if k in kept}, tuple(ranked[max_lanes:]))


@dataclass(frozen=True, slots=True)
class LimitedStep:
    plans: dict[LaneKey, LanePlan]  # what to run now: the applied plans moved towards the wanted ones
    changes: LaneChanges  # from the applied plans to `plans`
    retry_at: float | None  # when deferred changes fall due (None: nothing deferred)


@dataclass(slots=True)
class ChangeLimiter:
    """Rate-limits lane changes per key; the caller supplies the time, so it is a pure policy.

    Closing happens before opening, and an open never pushes the running lanes above `max_lanes`
    (a close that is held back holds back the open that would replace it).
    """

    min_interval: float = 1.0
    max_lanes: int | None = None
    last_change: dict[LaneKey, float] = field(default_factory=dict)

    def step(
        self, applied: Mapping[LaneKey, LanePlan], wanted: Mapping[LaneKey, LanePlan], now: float
    ) -> LimitedStep:
        wanted_changes = diff_lanes(applied, wanted)
        result = dict(applied)
        due: list[float] = []

        def allowed(key: LaneKey) -> bool:
            last = self.last_change.get(key)
            if last is None or now - last >= self.min_interval:
                return True
            due.append(last + self.min_interval)
            return False

        closed = [key for key in wanted_changes.closed if allowed(key)]
        for key in closed:
            del result[key]
        changed = [plan for plan in wanted_changes.changed if allowed(plan.key)]
        for plan in changed:
            result[plan.key] = plan
        opened: list[LanePlan] = []
        for plan in wanted_changes.opened:
            if not allowed(plan.key):
                continue
            if self.max_lanes is not None and len(result) >= self.max_lanes:
                # Full until a held-back close falls due.
                due.extend(
                    self.last_change[k] + self.min_interval for k in wanted_changes.closed if k in result
                )
                continue
            result[plan.key] = plan
            opened.append(plan)
        for key in [*closed, *(p.key for p in changed), *(p.key for p in opened)]:
            self.last_change[key] = now
        # Forget keys whose interval has passed: a meeting's churn must not grow this map for ever.
        for key in [
            k for k, at in self.last_change.items() if now - at >= self.min_interval and k not in result
        ]:
            del self.last_change[key]
        return LimitedStep(
            result,
            LaneChanges(tuple(opened), tuple(closed), tuple(changed)),
            min(due) if due else None,
        )
