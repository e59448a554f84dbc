import json
from collections.abc import Callable

from translator_bot.interpreter.transcript import LaneInfo, Transcript

LANE = LaneInfo("a->es", "a", "Alice", "en", "es", ("b",))


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


def test_write_jsonl_and_text(tmp_path):
    tr = Transcript("room/1 ", wall_clock=clock())
    tr.lane_opened(LANE)
    tr.source_text("a->es", "t1", "Hi", final=True)
    tr.translation_text("a->es", "t1", "Hola", final=True)
    tr.source_text("unknown-lane", "x", "ignored", final=True)
    jsonl, text = tr.write(tmp_path / "out")
    (entry,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert entry["original"] == "Hi" and entry["translation"] == "Hola" and entry["speaker_name"] == "Alice"
    assert entry["started_at"].endswith("Z") and entry["listener_ids"] == ["b"]
    assert "Alice (en): Hi" in text.read_text() and "(es): Hola" in text.read_text()
    assert "/" not in jsonl.name and " " not in jsonl.name
