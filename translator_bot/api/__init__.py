"""The embeddable API: run the interpreter inside your own asyncio program (see `Interpreter`), and
drive it from any transport through a `RoomPort` (translator_bot.interpreter.port)."""

from translator_bot.api.events import (
    Caption,
    Ended,
    EndReason,
    Event,
    Health,
    HealthChanged,
    LanesChanged,
    LaneStatus,
    Result,
    TranscriptEntry,
)
from translator_bot.api.interpreter import Interpreter

__all__ = [
    "Caption",
    "EndReason",
    "Ended",
    "Event",
    "Health",
    "HealthChanged",
    "Interpreter",
    "LaneStatus",
    "LanesChanged",
    "Result",
    "TranscriptEntry",
]
