from translator_bot.interpreter.plan import LaneKey, Member, diff_lanes, feeds_for, plan_lanes
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
