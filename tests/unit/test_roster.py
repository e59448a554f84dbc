"""The roster's rules, without a room server: who joins, changes and leaves, and which feeds to receive."""

from __future__ import annotations

from translator_bot.languages import parse_language
from translator_bot.room import videoroom
from translator_bot.room.events import FeedId, ParticipantJoined, ParticipantLeft, ParticipantUpdated
from translator_bot.room.roster import FeedsWanted, Roster

AUDIO = videoroom.StreamInfo(mid="0", type="audio")
VIDEO = videoroom.StreamInfo(mid="1", type="video")
MUTED = videoroom.StreamInfo(mid="2", type="audio", disabled=True)
INTERPRETER = '{"role": "interpreter", "for": 9, "lang": "es"}'


def roster() -> Roster:
    return Roster(parse_language("de"))


def publishers(*pubs: videoroom.PublisherInfo) -> videoroom.PublishersAnnounced:
    return videoroom.PublishersAnnounced(pubs)


def alice(display: str = "Alice [en]", *streams: videoroom.StreamInfo) -> videoroom.PublisherInfo:
    return videoroom.PublisherInfo(7, display, streams or (AUDIO,))


def test_a_publisher_joins_and_its_enabled_audio_feeds_are_wanted():
    r = roster()
    step = r.apply(publishers(alice("Alice [en]", AUDIO, VIDEO, MUTED)))
    joined = r.participants[7]
    assert joined.name == "Alice" and joined.language.tag == "en"
    assert step.changes == (ParticipantJoined(joined), FeedsWanted(7, frozenset({FeedId(7, "0")}), joined))
    assert step.problems == ()


def test_a_participant_that_leaves_stops_its_feeds_first():
    r = roster()
    r.apply(publishers(alice()))
    present = r.participants[7]
    step = r.apply(videoroom.ParticipantLeaving(7))
    # The feeds stop (labelled with the participant as it was) before the participant leaves.
    assert step.changes == (FeedsWanted(7, frozenset(), present), ParticipantLeft(present))
    assert 7 not in r.participants and not r.knows(7)


def test_a_duplicate_leaving_or_unpublished_for_someone_gone_changes_nothing():
    r = roster()
    r.apply(publishers(alice()))
    r.apply(videoroom.ParticipantLeaving(7))
    for late in (
        videoroom.FeedUnpublished(7),
        videoroom.ParticipantLeaving(7),
        videoroom.ParticipantKicked(7),
    ):
        step = r.apply(late)
        assert step.events == ()  # no participant event, nothing raised
        assert step.feeds == (FeedsWanted(7),)  # "receive none": nothing to stop any more
    assert r.participants == {}


def test_unpublished_twice_stops_the_feeds_and_keeps_the_participant():
    r = roster()
    r.apply(publishers(alice()))
    present = r.participants[7]
    for _ in range(2):
        step = r.apply(videoroom.FeedUnpublished(7))
        assert step.changes == (FeedsWanted(7, frozenset(), present),)
    assert r.participants[7] == present and r.wanted_feeds(7) == frozenset()


def test_the_same_announcement_twice_is_one_join():
    r = roster()
    first = r.apply(publishers(alice()))
    again = r.apply(publishers(alice()))
    assert [type(e) for e in first.events] == [ParticipantJoined]
    assert again.events == ()
    assert again.feeds == first.feeds  # the same feeds: a no-op for the subscriptions


def test_a_display_change_that_keeps_name_and_language_is_no_event():
    r = roster()
    r.apply(publishers(alice("Alice [en]")))
    assert r.apply(videoroom.DisplayChanged(7, "Alice  [en]")).events == ()
    step = r.apply(videoroom.DisplayChanged(7, "Alice [de-AT]"))
    (updated,) = step.events
    assert isinstance(updated, ParticipantUpdated)
    assert updated.previous.language.tag == "en" and updated.participant.language.tag == "de-AT"


def test_the_bots_own_participants_are_never_participants():
    r = roster()
    r.own_ids.add(7)
    assert r.apply(publishers(alice())).changes == ()
    assert r.apply(videoroom.AttendeeJoined(7, "Interpreter [bot]")).changes == ()
    assert r.apply(videoroom.DisplayChanged(7, "x")).changes == ()
    assert r.participants == {} and r.wanted_feeds(7) == frozenset()


def test_an_interpreter_is_a_participant_whose_feeds_are_not_received():
    r = roster()
    step = r.apply(
        publishers(
            videoroom.PublisherInfo(
                8, "Other", (videoroom.StreamInfo("0", "audio", description=INTERPRETER),)
            )
        )
    )
    assert r.participants[8].is_interpreter
    assert step.feeds == (FeedsWanted(8, frozenset(), r.participants[8]),)
    assert not r.people_present()


def test_a_participant_turning_interpreter_is_updated_then_not_received():
    r = roster()
    r.apply(publishers(alice()))
    turned = videoroom.PublisherInfo(
        7, "Alice [en]", (videoroom.StreamInfo("0", "audio", description=INTERPRETER),)
    )
    step = r.apply(publishers(turned))
    now = r.participants[7]
    assert now.is_interpreter
    assert step.changes[0] == ParticipantUpdated(now, step.changes[0].previous)  # type: ignore[union-attr]
    assert all(c == FeedsWanted(7, frozenset(), now) for c in step.changes[1:]) and len(step.changes) > 1


def test_a_metadata_problem_is_reported_once_per_participant():
    r = roster()
    first = r.apply(publishers(alice("Alice [xx-nonsense-tag]")))
    again = r.apply(videoroom.DisplayChanged(7, "Alice [xx-nonsense-tag]"))
    assert len(first.problems) == 1 and first.problems[0].participant == 7
    assert again.problems == ()
    assert r.participants[7].language.tag == "de"  # the default


def test_a_snapshot_after_a_gap_catches_up_on_who_left_and_who_stopped_publishing():
    r = roster()
    r.apply(publishers(alice(), videoroom.PublisherInfo(8, "Bob [fr]", (AUDIO,))))
    bob = r.participants[8]
    alice_then = r.participants[7]
    # Alice stopped publishing but is still there (listed as an attendee); Bob left during the gap.
    joined = videoroom.JoinedRoom(
        room=1,
        id=99,
        private_id=None,
        publishers=(),
        attendees=(videoroom.AttendeeJoined(7, "Alice [en]"),),
        attendees_listed=True,
    )
    step = r.apply_snapshot(joined)
    assert FeedsWanted(7, frozenset(), alice_then) in step.changes
    assert step.changes.index(FeedsWanted(8, frozenset(), bob)) < step.changes.index(ParticipantLeft(bob))
    assert set(r.participants) == {7}


def test_a_snapshot_without_attendees_keeps_the_silent_participants():
    r = roster()
    r.apply(videoroom.AttendeeJoined(5, "Carol [it]"))
    r.apply(publishers(alice()))
    step = r.apply_snapshot(videoroom.JoinedRoom(room=1, id=99, private_id=None, publishers=()))
    # Janus lists non-publishers only with notify_joining: Carol may well be there; Alice is gone.
    assert set(r.participants) == {5}
    assert [type(e) for e in step.events] == [ParticipantLeft]
