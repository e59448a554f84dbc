"""A simulated participant's view of the room when an event comes in with its join answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from translator_bot.room import videoroom
from translator_bot.room.janus import EventListener, JanusSession, JsonObject
from translator_bot.testbed.participant import SimParticipant

ME = 7
FEED = 100


def interpreter(audience: list[int]) -> JsonObject:
    description = json.dumps({"role": "interpreter", "for": audience, "lang": "de"})
    streams = [{"mid": "0", "type": "audio", "codec": "opus", "description": description}]
    return {"id": FEED, "display": "Interpreter -> German", "streams": streams}


class FakeHandle:
    def __init__(self, listener: EventListener) -> None:
        self.listener = listener


class FakeSession:
    closed = False

    async def attach(self, plugin: str, listener: EventListener) -> FakeHandle:
        return FakeHandle(listener)


async def test_a_relabel_that_arrives_with_the_join_answer_is_not_undone_by_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Janus answers the join with the publishers as they were; the bot relabels its feed for the
    newcomer at once, and that event is handled before the join coroutine resumes."""

    async def connect(url: str, api_secret: str | None = None) -> FakeSession:
        return FakeSession()

    async def join_publisher(handle: Any, room: int, display: str) -> videoroom.JoinedRoom:
        update = {"videoroom": "event", "publishers": [interpreter([3, ME])]}
        handle.listener({"janus": "event", "plugindata": {"plugin": videoroom.PLUGIN, "data": update}})
        return videoroom.parse_joined(
            {"videoroom": "joined", "id": ME, "room": 1, "publishers": [interpreter([3])]}
        )

    monkeypatch.setattr(JanusSession, "connect", staticmethod(connect))
    monkeypatch.setattr(videoroom, "join_publisher", join_publisher)
    dana = SimParticipant("ws://unused", 1, "Dana", "de", publish=False)
    await dana.join()
    assert dana.is_my_interpreter(dana.publishers[FEED])
