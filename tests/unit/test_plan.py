import itertools

from translator_bot.interpreter.plan import (
    ChangeLimiter,
    LaneKey,
    LanePlan,
    Member,
    awaiting_speech,
    cap_lanes,
    diff_lanes,
    feeds_for,
    plan_lanes,
)
from translator_bot.languages import parse_language


def member(pid: str, lang: str, name: str | None = None) -> Member:
    return Member(pid, name or pid.title(), parse_language(lang))


def test_two_languages_make_two_lanes_one_per_direction():
    plans = plan_lanes([member("a", "en"), member("b", "es-MX")])
    assert set(plans) == {LaneKey("a", "es"), LaneKey("b", "en")}
    assert plans[LaneKey("a", "es")].target.tag == "es-MX"
    assert plans[LaneKey("a", "es")].listener_ids == ("b",)
    assert plans[LaneKey("b", "en")].listener_ids == ("a",)


def test_same_language_costs_nothing():
    assert plan_lanes([member("a", "es-ES"), member("b", "es-MX")]) == {}
    assert plan_lanes([member("a", "en")]) == {}
    assert plan_lanes([]) == {}


def test_third_participant_shares_lanes_by_language():
    plans = plan_lanes([member("a", "en"), member("b", "es"), member("c", "es-AR")])
    # a is interpreted once into Spanish for both b and c; b and c need no lane between them
    assert plans[LaneKey("a", "es")].listener_ids == ("b", "c")
    assert set(plans) == {LaneKey("a", "es"), LaneKey("b", "en"), LaneKey("c", "en")}
    plans = plan_lanes([member("a", "en"), member("b", "es"), member("c", "de")])
    assert len(plans) == 6


def test_diff_reports_open_close_and_retarget():
    old = plan_lanes([member("a", "en"), member("b", "es")])
    new = plan_lanes([member("a", "en"), member("b", "de")])
    changes = diff_lanes(old, new)
    assert {p.key for p in changes.opened} == {LaneKey("a", "de")}
    assert set(changes.closed) == {LaneKey("a", "es")}
    # b->en keeps its key but its speaker now speaks German: the instructions must follow
    assert {p.key for p in changes.changed} == {LaneKey("b", "en")}
    assert diff_lanes(new, new).empty


def test_diff_sees_region_and_name_changes_as_changes():
    old = plan_lanes([member("a", "en"), member("b", "es-ES", "Bea")])
    new = plan_lanes([member("a", "en"), member("b", "es-MX", "Beatriz")])
    changes = diff_lanes(old, new)
    assert not changes.opened and not changes.closed
    assert {p.key for p in changes.changed} == {LaneKey("a", "es"), LaneKey("b", "en")}


def test_feeds_per_listener_never_carry_own_speech():
    plans = plan_lanes([member("a", "en"), member("b", "es"), member("c", "de")])
    feeds = feeds_for(plans, "per-listener")
    assert set(feeds) == {"a", "b", "c"}
    for listener, keys in feeds.items():
        assert all(key.speaker_id != listener for key in keys)
    assert feeds["a"] == (LaneKey("b", "en"), LaneKey("c", "en"))


def test_mixed_feed_carries_every_lane():
    plans = plan_lanes([member("a", "en"), member("b", "es")])
    assert feeds_for(plans, "mixed") == {"mixed": (LaneKey("a", "es"), LaneKey("b", "en"))}
    assert feeds_for({}, "mixed") == {}


# --- the lane cap ------------------------------------------------------------------------------------


def everyone_in_their_own_language(count: int) -> list[Member]:
    languages = ["en", "es", "de", "fr", "it", "pt", "ja", "zh", "ko", "ar", "ru", "nl", "sv", "pl", "tr",
                 "hi", "uk", "cs", "el", "he"]  # fmt: skip
    return [member(f"p{i:02d}", languages[i]) for i in range(count)]


def test_twenty_languages_would_need_380_lanes_and_the_cap_keeps_a_bounded_number():
    people = everyone_in_their_own_language(20)
    plans = plan_lanes(people)
    assert len(plans) == 380
    capped = cap_lanes(plans, [m.id for m in people], 12)
    assert len(capped.plans) == 12 and len(capped.left_out) == 368


def test_the_cap_serves_the_earliest_joined_fully_among_themselves():
    people = everyone_in_their_own_language(5)  # p00..p04 joined in that order
    plans = plan_lanes(people)
    capped = cap_lanes(plans, [m.id for m in people], 6)
    # three people need 6 lanes: the first three are fully interpreted, the later two not at all
    assert set(capped.plans) == {
        LaneKey(s, lang)
        for s, lang in [
            ("p00", "es"),
            ("p00", "de"),
            ("p01", "en"),
            ("p01", "de"),
            ("p02", "en"),
            ("p02", "es"),
        ]
    }
    assert all({"p03", "p04"} & ({p.speaker.id} | set(p.listener_ids)) for p in capped.left_out)


def test_join_order_not_id_order_decides_and_a_newcomer_takes_nothing_away():
    a, b, c = member("z", "en"), member("y", "es"), member("x", "de")
    order = ["z", "y"]
    before = cap_lanes(plan_lanes([a, b]), order, 2)
    after = cap_lanes(plan_lanes([a, b, c]), [*order, "x"], 2)
    assert set(before.plans) == set(after.plans) == {LaneKey("z", "es"), LaneKey("y", "en")}
    assert {p.key.speaker_id for p in after.left_out} | {p.key.target_base for p in after.left_out} >= {"x"}


def test_a_leaver_frees_capacity_for_the_next_in_line():
    a, b, c = member("a", "en"), member("b", "es"), member("c", "de")
    capped = cap_lanes(plan_lanes([b, c]), ["a", "b", "c"], 2)
    assert set(capped.plans) == {LaneKey("b", "de"), LaneKey("c", "es")} and not capped.left_out
    assert len(cap_lanes(plan_lanes([a, b, c]), ["a", "b", "c"], 2).left_out) == 4


def test_no_cap_keeps_every_lane():
    plans = plan_lanes(everyone_in_their_own_language(4))
    assert cap_lanes(plans, [], None).plans == plans


# --- the change limiter ------------------------------------------------------------------------------


def test_a_language_flipping_every_100_ms_changes_each_lane_at_most_once_a_second():
    alice = member("a", "en")
    bob_de, bob_en = member("b", "de"), member("b", "en")
    limiter = ChangeLimiter(min_interval=1.0)
    applied: dict[LaneKey, LanePlan] = {}
    changes_at: dict[LaneKey, list[float]] = {}
    for tick in range(100):  # 10 s of flips, one every 100 ms
        now = tick * 0.1
        wanted = plan_lanes([alice, bob_de if tick % 2 == 0 else bob_en])
        step = limiter.step(applied, wanted, now)
        applied = step.plans
        for key in [
            *step.changes.closed,
            *(p.key for p in step.changes.opened),
            *(p.key for p in step.changes.changed),
        ]:
            changes_at.setdefault(key, []).append(now)
        if step.retry_at is not None:
            assert step.retry_at > now
    assert changes_at, "nothing was ever applied"
    for key, times in changes_at.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 1.0 - 1e-9 for gap in gaps), (key, times)
        assert len(times) <= 11


def test_a_held_back_change_is_applied_when_due_and_the_last_word_wins():
    alice, bob_de, bob_es = member("a", "en"), member("b", "de"), member("b", "es")
    limiter = ChangeLimiter(min_interval=1.0)
    first = limiter.step({}, plan_lanes([alice, bob_de]), 0.0)
    assert {p.key for p in first.changes.opened} == {LaneKey("a", "de"), LaneKey("b", "en")}
    # 0.2 s later Bob says Spanish: a->de must close and a->es open; b->en is re-configured
    wanted = plan_lanes([alice, bob_es])
    second = limiter.step(first.plans, wanted, 0.2)
    assert {p.key for p in second.changes.opened} == {LaneKey("a", "es")}
    assert not second.changes.closed and not second.changes.changed
    assert second.retry_at == 1.0
    third = limiter.step(second.plans, wanted, 1.0)
    assert set(third.changes.closed) == {LaneKey("a", "de")}
    assert {p.key for p in third.changes.changed} == {LaneKey("b", "en")}
    assert third.plans == wanted and third.retry_at is None


def test_the_limiter_never_runs_more_lanes_than_the_cap():
    alice, bob_de, bob_es = member("a", "en"), member("b", "de"), member("b", "es")
    limiter = ChangeLimiter(min_interval=1.0, max_lanes=2)
    first = limiter.step({}, plan_lanes([alice, bob_de]), 0.0)
    second = limiter.step(first.plans, plan_lanes([alice, bob_es]), 0.5)
    assert len(second.plans) == 2 and not second.changes.opened  # a->de cannot close yet
    assert second.retry_at == 1.0
    third = limiter.step(second.plans, plan_lanes([alice, bob_es]), 1.0)
    assert set(third.plans) == {LaneKey("a", "es"), LaneKey("b", "en")}


def test_the_limiter_forgets_closed_lanes_once_their_interval_passed():
    limiter = ChangeLimiter(min_interval=1.0)
    applied: dict[LaneKey, LanePlan] = {}
    for i in range(50):  # fifty different listeners come and go
        applied = limiter.step(applied, plan_lanes([member("a", "en"), member(f"l{i}", "de")]), i * 2.0).plans
        applied = limiter.step(applied, {}, i * 2.0 + 1.0).plans
    assert len(limiter.last_change) <= 4


# --- lazy lanes: only speakers the bot has heard get lanes -----------------------------------------


WEBINAR_ROOM = [
    member("a", "en"),  # the presenter
    member("b", "es"),
    member("c", "de"),
    member("d", "fr"),
    member("e", "es"),
    member("q", "de"),  # joins last, asks a question
]


def test_only_heard_speakers_get_lanes_and_they_still_reach_every_listener():
    plans = plan_lanes(WEBINAR_ROOM, speakers={"a"})
    assert set(plans) == {LaneKey("a", "es"), LaneKey("a", "de"), LaneKey("a", "fr")}
    assert plans[LaneKey("a", "es")].listener_ids == ("b", "e")
    assert plan_lanes(WEBINAR_ROOM, speakers=set()) == {}
    # None: everyone speaks (lanes open at the join), the plan of before.
    assert plan_lanes(WEBINAR_ROOM, speakers=None) == plan_lanes(WEBINAR_ROOM)


def test_with_lanes_at_the_join_silent_early_joiners_take_the_cap_from_a_late_questioner():
    """The problem lazy lanes solve, as the planner sees it: with the cap at 3, every lane goes to
    people who joined before the questioner, though only the presenter ever speaks."""
    order = [m.id for m in WEBINAR_ROOM]
    capped = cap_lanes(plan_lanes(WEBINAR_ROOM), order, 3)
    assert not any(plan.speaker.id == "q" for plan in capped.plans.values())
    assert {p.speaker.id for p in capped.plans.values()} - {"a"}, "silent listeners hold lanes"


def test_the_cap_ranks_among_heard_speakers_so_the_late_questioner_is_served():
    order = [m.id for m in WEBINAR_ROOM]
    capped = cap_lanes(plan_lanes(WEBINAR_ROOM, speakers={"a", "q"}), order, 5)
    assert {p.speaker.id for p in capped.plans.values()} == {"a", "q"}
    # The presenter's three lanes rank first (earlier joined); the questioner gets two of three, and
    # the one left out is counted as unserved, not lanes of people who never spoke.
    assert sum(p.speaker.id == "q" for p in capped.plans.values()) == 2
    assert [p.speaker.id for p in capped.left_out] == ["q"]
    capped = cap_lanes(plan_lanes(WEBINAR_ROOM, speakers={"q"}), order, 2)
    assert {p.key for p in capped.plans.values()} <= {LaneKey("q", b) for b in ("en", "es", "fr")}
    assert len(capped.plans) == 2


def test_awaiting_speech_names_who_would_have_lanes_once_heard():
    assert awaiting_speech(WEBINAR_ROOM, heard={"a"}) == {"b", "c", "d", "e", "q"}
    assert awaiting_speech(WEBINAR_ROOM, heard={m.id for m in WEBINAR_ROOM}) == frozenset()
    # Alone in their language with nobody else: nobody to interpret for, nothing to listen for.
    assert awaiting_speech([member("a", "en"), member("b", "en-GB")], heard=set()) == frozenset()
    assert awaiting_speech([member("a", "en")], heard=set()) == frozenset()
    assert awaiting_speech([member("a", "en"), member("b", "es")], heard=set()) == {"a", "b"}
