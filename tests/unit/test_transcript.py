import json
from collections.abc import Callable
from pathlib import Path

from translator_bot.interpreter.journal import TranscriptJournal
from translator_bot.interpreter.transcript import IDLE_S, SOURCE_GRACE_S, LaneInfo, Transcript

LANE = LaneInfo("a->es", "a", "Alice", "en", "es", ("b",))


class Timers:
    """A scheduler under the test's control: `advance(s)` fires what is due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.due: list[tuple[float, Callable[[], None], list[bool]]] = []

    def schedule(self, delay: float, callback: Callable[[], None]) -> "Timers.Handle":
        cancelled = [False]
        self.due.append((self.now + delay, callback, cancelled))
        return Timers.Handle(cancelled)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for when, callback, cancelled in sorted(self.due, key=lambda d: d[0]):
            if when <= self.now and not cancelled[0]:
                cancelled[0] = True
                callback()

    class Handle:
        def __init__(self, cancelled: list[bool]) -> None:
            self._cancelled = cancelled

        def cancel(self) -> None:
            self._cancelled[0] = True


def recording(timers: Timers | None = None) -> tuple[Transcript, list[dict[str, object]]]:
    timers = timers or Timers()
    tr = Transcript("m", wall_clock=clock(), schedule=timers.schedule)
    tr.lane_opened(LANE)
    lines: list[dict[str, object]] = []
    tr.record_to(lines.append)
    return tr, lines


def clock() -> Callable[[], float]:
    t = [1_700_000_000.0]

    def now() -> float:
        t[0] += 1.0
        return t[0]

    return now


def test_same_item_ids_pair_exactly_even_when_text_comes_late():
    """The translate engine shares item ids between source and translation."""
    tr = Transcript("m", wall_clock=clock())
    tr.lane_opened(LANE)
    tr.source_text("a->es", "t1", "Good ", final=False)
    tr.translation_started("a->es", "t1")
    tr.translation_text("a->es", "t1", "Buenos días", final=True)
    tr.source_text("a->es", "t2", "Second", final=False)  # next sentence begins before t1 is final
    tr.source_text("a->es", "t1", "Good morning", final=True)
    tr.translation_started("a->es", "t2")
    tr.source_text("a->es", "t2", "Second one", final=True)
    tr.translation_text("a->es", "t2", "Segunda", final=True)
    assert [(u.original, u.translation) for u in tr.utterances] == [
        ("Good morning", "Buenos días"),
        ("Second one", "Segunda"),
    ]


def test_different_item_ids_pair_by_order_and_late_finals_replace_partials():
    """The realtime engine: the user item and the assistant item have different ids."""
    tr = Transcript("m", wall_clock=clock())
    tr.lane_opened(LANE)
    tr.source_text("a->es", "user1", "Hel", final=False)
    tr.translation_text("a->es", "resp1", "Hola", final=False)
    tr.source_text("a->es", "user1", "Hello there", final=True)  # after the translation began
    tr.translation_text("a->es", "resp1", "Hola a todos", final=True)
    tr.translation_text("a->es", "resp2", "Adiós", final=True)  # transcription of user2 still running
    tr.source_text("a->es", "user2", "Good", final=False)
    tr.source_text("a->es", "user2", "bye", final=False)
    tr.source_text("a->es", "user2", "Goodbye", final=True)
    tr.source_text("a->es", "user3", "Next", final=True)  # waits for its own translation
    tr.translation_text("a->es", "resp3", "Siguiente", final=True)
    assert [(u.original, u.translation) for u in tr.utterances] == [
        ("Hello there", "Hola a todos"),
        ("Goodbye", "Adiós"),
        ("Next", "Siguiente"),
    ]


async def test_jsonl_lines_while_the_meeting_runs_and_text_at_the_end(tmp_path: Path) -> None:
    tr = Transcript("room/1 ", wall_clock=clock())
    tr.lane_opened(LANE)
    journal = TranscriptJournal(tmp_path / "out" / f"{tr.base_name}.jsonl")
    tr.record_to(journal.append)
    tr.source_text("a->es", "t1", "Hi", final=True)
    tr.translation_text("a->es", "t1", "Hola", final=True)
    tr.source_text("unknown-lane", "x", "ignored", final=True)
    tr.finish()
    text = tmp_path / "out" / f"{tr.base_name}.txt"
    status = await journal.aclose(text, tr.render_text())
    assert status.lines_written == 1 and status.text_written
    jsonl = journal.path
    (entry,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert entry["original"] == "Hi" and entry["translation"] == "Hola" and entry["speaker_name"] == "Alice"
    assert entry["started_at"].endswith("Z") and entry["listener_ids"] == ["b"]
    assert entry["revision"] == 1 and entry["original_final"] and entry["translation_final"]
    assert "Alice (en): Hi" in text.read_text() and "(es): Hola" in text.read_text()
    assert "/" not in jsonl.name and " " not in jsonl.name


def test_recorded_as_soon_as_translation_and_original_are_final():
    """The translate engine: source final, then translation final, for the same item."""
    tr, lines = recording()
    tr.source_text("a->es", "t1", "Good morning", final=False)
    tr.translation_text("a->es", "t1", "Buenos", final=False)
    tr.source_text("a->es", "t1", "Good morning", final=True)
    assert lines == []  # the translation is still streaming
    tr.translation_text("a->es", "t1", "Buenos días", final=True)
    assert [(line["original"], line["translation"]) for line in lines] == [("Good morning", "Buenos días")]


def test_a_transcription_that_comes_after_the_translation_is_waited_for():
    """The realtime engine: the input transcription may finish after the response."""
    tr, lines = recording()
    tr.source_text("a->es", "user1", "Hel", final=False)
    tr.translation_text("a->es", "resp1", "Hola a todos", final=True)
    tr.translation_done("a->es", "resp1")
    assert lines == []
    tr.source_text("a->es", "user1", "Hello everyone", final=True)
    assert [(line["original"], line["translation"]) for line in lines] == [("Hello everyone", "Hola a todos")]


def test_a_transcription_that_never_comes_is_not_waited_for_long():
    timers = Timers()
    tr, lines = recording(timers)
    tr.source_text("a->es", "user1", "Hel", final=False)  # its transcription then fails
    tr.translation_text("a->es", "resp1", "Hola", final=True)
    timers.advance(SOURCE_GRACE_S - 0.1)
    assert lines == []
    timers.advance(0.2)
    assert [(line["original"], line["original_final"]) for line in lines] == [("Hel", False)]
    # It turns up after all: recorded again, the reader keeps the last revision.
    tr.source_text("a->es", "user1", "Hello", final=True)
    assert [(line["original"], line["revision"]) for line in lines] == [("Hel", 1), ("Hello", 2)]
    tr.source_text("a->es", "user1", "Hello", final=True)  # nothing new: no third line
    assert len(lines) == 2


def test_a_translation_that_never_ends_is_recorded_after_a_silence():
    """Its model link went away in the middle: what was heard is recorded, not kept until the end."""
    timers = Timers()
    tr, lines = recording(timers)
    tr.source_text("a->es", "user1", "Hello there", final=True)
    tr.translation_started("a->es", "resp1")
    tr.translation_text("a->es", "resp1", "Hola", final=False)
    timers.advance(IDLE_S - 1)
    tr.translation_text("a->es", "resp1", " a", final=False)  # news: the wait starts again
    timers.advance(IDLE_S - 1)
    assert lines == []
    timers.advance(1.5)
    assert [(line["translation"], line["translation_final"]) for line in lines] == [("Hola a", False)]


def test_finish_records_what_is_in_flight_in_spoken_order():
    tr, lines = recording()
    tr.source_text("a->es", "t1", "One", final=True)
    tr.translation_text("a->es", "t1", "Uno", final=False)
    tr.source_text("a->es", "t2", "Two", final=True)
    tr.translation_text("a->es", "t2", "Dos", final=True)
    tr.finish()
    assert [line["item_id"] for line in lines] == ["t2", "t1"]
    tr.finish()
    assert len(lines) == 2


def test_any_text_the_model_sends_is_kept_and_rendered():
    """Half an emoji per delta joins up; a lone half becomes U+FFFD in the record and the text."""
    tr, lines = recording()
    tr.source_text("a->es", "t1", "Hi \ud83d", final=False)
    tr.source_text("a->es", "t1", "\udc4b", final=False)
    tr.translation_text("a->es", "t1", "Hola \ud83d", final=False)
    tr.translation_text("a->es", "t1", "\udc4b y \ud83d", final=False)
    tr.source_text("a->es", "t1", "Hi \ud83d\udc4b", final=True)
    tr.translation_done("a->es", "t1")
    (entry,) = tr.utterances
    assert entry.original == "Hi 👋" and entry.translation == "Hola 👋 y \ufffd"
    assert lines[0]["translation"] == "Hola 👋 y \ufffd"
    assert "Hola 👋 y \ufffd" in tr.render_text()
    tr.render_text().encode("utf-8")  # what used to raise
