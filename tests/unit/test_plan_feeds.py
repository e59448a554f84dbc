"""Output feeds as pure data: per listener, per language (webinars) or mixed; who each feed is labelled
for, and how that follows joins, leaves and a language disappearing."""

from __future__ import annotations

from translator_bot.interpreter.plan import (
    LANGUAGE_FEED_PREFIX,
    ChangeLimiter,
    FeedPlan,
    LaneKey,
    Member,
    feeds_for,
    plan_feeds,
    plan_lanes,
)
from translator_bot.languages import parse_language


def member(pid: str, lang: str) -> Member:
    return Member(pid, pid.title(), parse_language(lang))


SPEAKER = member("s", "en")
# Eight listeners in three languages: the speaker's own, Spanish (two regions) and French.
LISTENERS = [
    member("l1", "en"),
    member("l2", "en-GB"),
    member("l3", "es-MX"),
    member("l4", "es-ES"),
    member("l5", "es-MX"),
    member("l6", "fr"),
    member("l7", "fr"),
    member("l8", "fr-CA"),
]
WEBINAR = [SPEAKER, *LISTENERS]


def test_a_webinar_of_one_speaker_and_eight_listeners_in_three_languages_needs_three_feeds_not_nine() -> None:
    plans = plan_lanes(WEBINAR)
    per_language = plan_feeds(plans, "per-language")
    assert set(per_language) == {"lang:en", "lang:es", "lang:fr"}
    assert len(plan_feeds(plans, "per-listener")) == 9  # everyone, the speaker too, hears someone
    assert per_language["lang:es"].audience == ("l3", "l4", "l5")
    assert per_language["lang:fr"].audience == ("l6", "l7", "l8")
    assert per_language["lang:en"].audience == ("l1", "l2", "s")
    # The speaker is carried into Spanish and French; the Spanish feed is labelled with the tag its
    # model is given (the lowest-id Spanish listener's region).
    assert LaneKey("s", "es") in per_language["lang:es"].lanes
    assert LaneKey("s", "fr") in per_language["lang:fr"].lanes
    assert per_language["lang:es"].language == parse_language("es-MX")


def test_every_listener_of_a_language_feed_hears_exactly_what_their_own_feed_would_carry() -> None:
    plans = plan_lanes(WEBINAR)
    per_listener = plan_feeds(plans, "per-listener")
    for feed in plan_feeds(plans, "per-language").values():
        assert feed.audience
        for listener in feed.audience:
            assert per_listener[listener].lanes == feed.lanes
        # Nobody hears themselves translated back: no lane of a feed is spoken by its audience.
        assert not {key.speaker_id for key in feed.lanes} & set(feed.audience)


def test_people_joining_and_leaving_relabel_the_feed_of_their_language_only() -> None:
    before = plan_feeds(plan_lanes(WEBINAR), "per-language")
    joined = plan_feeds(plan_lanes([*WEBINAR, member("l9", "es")]), "per-language")
    assert set(joined) == set(before)
    assert joined["lang:es"].audience == ("l3", "l4", "l5", "l9")
    assert joined["lang:fr"].audience == before["lang:fr"].audience
    # A new listener is also a possible speaker: their lanes join the other languages' feeds.
    assert LaneKey("l9", "fr") in joined["lang:fr"].lanes
    left = plan_feeds(plan_lanes([m for m in WEBINAR if m.id != "l4"]), "per-language")
    assert left["lang:es"].audience == ("l3", "l5")
    assert LaneKey("l4", "en") not in left["lang:en"].lanes


def test_a_language_whose_last_listener_leaves_loses_its_feed() -> None:
    without_french = [m for m in WEBINAR if not m.language.same_language(parse_language("fr"))]
    feeds = plan_feeds(plan_lanes(without_french), "per-language")
    assert set(feeds) == {"lang:en", "lang:es"}
    assert all(key.target_base != "fr" for feed in feeds.values() for key in feed.lanes)
    # The last two people of different languages leave: nothing to interpret, no feed at all.
    assert plan_feeds(plan_lanes([SPEAKER, member("l1", "en")]), "per-language") == {}


def test_someone_switching_language_is_not_told_to_play_their_own_old_lane() -> None:
    """Bea joins in Spanish, then switches to English: the lane from Dieter into English takes her as a
    listener at once (its last change is long past), but the close of her own lane into English is held
    back by the change limiter. The English feed carries both meanwhile, so she is left out of its
    audience until her lane closes, and is never told to play herself translated back."""
    limiter = ChangeLimiter(min_interval=1.0)
    first = [member("a", "en"), member("c", "en"), member("d", "de")]
    applied = limiter.step({}, plan_lanes(first), now=0.0).plans
    applied = limiter.step(applied, plan_lanes([*first, member("b", "es")]), now=2.0).plans
    switched = [*first, member("b", "en")]
    held = limiter.step(applied, plan_lanes(switched), now=2.5).plans
    assert LaneKey("b", "en") in held  # not closed yet
    assert "b" in held[LaneKey("d", "en")].listener_ids  # already a listener of English
    english = plan_feeds(held, "per-language")["lang:en"]
    assert {LaneKey("b", "en"), LaneKey("d", "en")} <= set(english.lanes)
    assert english.audience == ("a", "c")
    later = limiter.step(held, plan_lanes(switched), now=3.5).plans
    assert plan_feeds(later, "per-language")["lang:en"].audience == ("a", "b", "c")


def test_per_listener_and_mixed_feeds_keep_their_contract() -> None:
    plans = plan_lanes([member("a", "en"), member("b", "es")])
    assert plan_feeds(plans, "per-listener") == {
        "a": FeedPlan((LaneKey("b", "en"),), "a"),
        "b": FeedPlan((LaneKey("a", "es"),), "b"),
    }
    assert plan_feeds(plans, "mixed") == {"mixed": FeedPlan((LaneKey("a", "es"), LaneKey("b", "en")), None)}
    assert feeds_for(plans, "per-language") == {
        LANGUAGE_FEED_PREFIX + "en": (LaneKey("b", "en"),),
        LANGUAGE_FEED_PREFIX + "es": (LaneKey("a", "es"),),
    }
