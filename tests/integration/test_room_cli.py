"""`translator-bot join` as a process, in the test's private network namespace, against a real Janus."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest

from translator_bot.testbed.bot import BotProcess
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import SimParticipant, fixture_speech

pytestmark = [pytest.mark.janus, pytest.mark.timeout(60)]


async def start_bot(
    janus: JanusServer, *args: str, admin_key: bool = False, extra_env: dict[str, str] | None = None
) -> BotProcess:
    env = janus.environ()
    env["OPENAI_API_KEY"] = "sk-local-test-key"
    env["TRANSLATOR_LOG_LEVEL"] = "INFO"
    # The room side alone: no model, each utterance is played back (the interpreter tests use the fake).
    env["TRANSLATOR_ENGINE"] = "passthrough"
    env["TRANSLATOR_METRICS_PORT"] = "0"
    if not admin_key:
        env.pop("TRANSLATOR_JANUS_ADMIN_KEY", None)
    env.update(extra_env or {})
    return await BotProcess.start(["join", *args], env)


async def test_unknown_room_exits_3_with_a_clear_message(janus: JanusServer) -> None:
    for meeting in ("999999", "not-a-number"):
        bot = await start_bot(janus, meeting)
        try:
            assert await bot.wait() == 3, bot.text
        finally:
            await bot.kill()
        assert re.search(r"translator-bot: meeting .* (does not exist|is not valid)", bot.text), bot.text


async def test_join_receive_and_leave_on_sigterm(janus: JanusServer) -> None:
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    beatriz = SimParticipant(
        janus.url, janus.room, "Beatriz", "es-MX", schedule=[fixture_speech("u2-es")], loop=True
    )
    await alice.join()
    bot = await start_bot(janus, str(janus.room))
    try:
        await bot.wait_line(r"joined meeting 1234")
        await beatriz.join()
        await bot.wait_line(r"receiving audio from participant .* \(Alice\)")
        await bot.wait_line(r"receiving audio from participant .* \(Beatriz\)")
        assert re.search(r"Beatriz speaks Spanish \(Mexico\)", bot.text), bot.text
        await asyncio.sleep(1.0)
        bot.proc.send_signal(signal.SIGTERM)
        assert await bot.wait() == 0, bot.text
    finally:
        await bot.kill()
        await alice.close()
        await beatriz.close()
    counts = [int(m) for m in re.findall(r"ended: (\d+) frames received", bot.text)]
    assert len(counts) == 2 and all(c > 20 for c in counts), bot.text
    assert "Traceback" not in bot.text, bot.text


async def test_create_room_then_sigint(janus: JanusServer) -> None:
    bot = await start_bot(janus, "7777", "--create-room", admin_key=True)
    try:
        await bot.wait_line(r"created meeting 7777")
        await bot.wait_line(r"joined meeting 7777")
        bot.proc.send_signal(signal.SIGINT)
        assert await bot.wait() == 0, bot.text
    finally:
        await bot.kill()
    assert janus.admin_key not in bot.text


async def test_janus_killed_mid_call_bot_exits_3(janus: JanusServer) -> None:
    alice = SimParticipant(
        janus.url, janus.room, "Alice", "en", schedule=[fixture_speech("u1-en")], loop=True
    )
    await alice.join()
    # Janus does not come back: the bot retries for TRANSLATOR_ROOM_RECONNECT_SECONDS, then exits 3.
    bot = await start_bot(janus, str(janus.room), extra_env={"TRANSLATOR_ROOM_RECONNECT_SECONDS": "2"})
    try:
        await bot.wait_line(r"receiving audio from participant .* \(Alice\)")
        await asyncio.sleep(0.5)
        janus.kill()
        assert await bot.wait() == 3, bot.text
    finally:
        await bot.kill()
        await alice.close()
    assert re.search(r"translator-bot: lost the room server", bot.text), bot.text
    assert "Traceback" not in bot.text, bot.text
