"""The README's embedding examples run as printed: the RoomPort transport drives a whole meeting through
the public API, and the example program uses only names `translator_bot` exports (it is run in a
Janus meeting by tests/integration/test_api_readme.py)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
from pathlib import Path

import pytest

import translator_bot
from tests.unit.memory_room import SpeakerTrack, person
from tests.unit.readme_examples import load_readme_example, readme_example
from translator_bot import Caption, EndReason, ExitCode, Interpreter, MeetingEnded, PeerAudio, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        engine="passthrough", playout_cushion_ms=60, metrics_port=0, transcript_dir=tmp_path / "transcripts"
    )


async def until(predicate, seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - polls what the interpreter's events filled in
            await asyncio.sleep(0.02)


async def test_the_readme_transport_carries_a_meeting(settings: Settings, tmp_path: Path) -> None:
    example = load_readme_example("queue_room.py", tmp_path)
    room = example.QueueRoom()
    await room.inbox.put(person("a", "Alice", "en"))
    await room.inbox.put(person("b", "Beatriz", "es"))
    captions: list[Caption] = []
    async with Interpreter(settings, "readme-room", room=room) as bot:
        bot.on(Caption, captions.append)
        await until(lambda: len(bot.lanes) == 2)
        await room.inbox.put(PeerAudio("a", SpeakerTrack("u1-en")))
        await until(lambda: any(c.final for c in captions))
        await room.inbox.put(MeetingEnded("the call is over"))
        result = await asyncio.wait_for(bot.wait(), 10)

    assert result.reason is EndReason.MEETING_ENDED and result.detail == "the call is over"
    assert result.exit_code is ExitCode.OK
    # One feed per listener, labelled for them in their language, audio played into it.
    feeds = {feed.audience: feed for feed in room.feeds}
    assert set(feeds) == {"a", "b"} and (feeds["a"].lang, feeds["b"].lang) == ("en", "es")
    assert all(feed.frames > 0 for feed in room.feeds)
    # Beatriz's feed carried Alice's captions; Alice's own feed none of her words.
    to_b = [json.loads(text) for text in feeds["b"].captions]
    assert to_b and to_b[-1]["final"] and to_b[-1]["speaker_name"] == "Alice"
    assert to_b[-1]["translation"] == [c for c in captions if c.final][-1].translation
    assert feeds["a"].captions == []
    # The meeting closed every feed it published: their senders are done.
    assert all(feed._sender.done() for feed in room.feeds)


def test_the_readme_program_uses_only_the_public_names() -> None:
    tree = ast.parse(readme_example("interpret.py"))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "translator_bot"
        for alias in node.names
    ]
    assert imported and set(imported) <= set(translator_bot.__all__), imported
    others = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module != "translator_bot"
    ]
    assert others == [], others
    namespace: dict[str, object] = {"__name__": "readme_interpret"}
    exec(compile(tree, "interpret.py", "exec"), namespace)  # defines main(); runs nothing
    assert inspect.iscoroutinefunction(namespace["main"])
