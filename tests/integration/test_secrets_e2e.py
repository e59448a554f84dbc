"""`translator-bot join` against a real Janus with a canary in every secret setting: refused, and in a
whole call that ends with Janus killed, at DEBUG in text and JSON, no canary ever reaches its output."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import StartJanus
from tests.unit.test_canary import SECRETS, URL_PASSWORDS, assert_no_canary
from translator_bot.testbed.bot import BotProcess
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import SimParticipant, fixture_speech

pytestmark = [pytest.mark.janus, pytest.mark.timeout(90)]

# Janus reads its API secret from a config file: this one is plain enough for its parser and still
# carries a canary core.
JANUS_API_SECRET = "CANARYjanussecret-e2e-7Qw"


def canary_environ(janus: JanusServer, fmt: str, api_secret: str) -> dict[str, str]:
    env = janus.environ()
    env.update(SECRETS)
    env["TRANSLATOR_JANUS_API_SECRET"] = api_secret
    # The password rides along in the URL (Janus ignores it; aiohttp sends it as Basic auth).
    env["TRANSLATOR_JANUS_URL"] = janus.url.replace(
        "://", f"://bot:{URL_PASSWORDS['TRANSLATOR_JANUS_URL']}@", 1
    )
    env["OPENAI_BASE_URL"] = f"http://user:{URL_PASSWORDS['OPENAI_BASE_URL']}@127.0.0.1:9/v1"
    env["TRANSLATOR_WEB_JANUS_URL"] = f"wss://page:{URL_PASSWORDS['TRANSLATOR_WEB_JANUS_URL']}@h.example/"
    env["TRANSLATOR_ENGINE"] = "passthrough"
    env["TRANSLATOR_METRICS_PORT"] = "0"
    env["TRANSLATOR_LOG_LEVEL"] = "DEBUG"
    env["TRANSLATOR_LOG_FORMAT"] = fmt
    # A vanished Janus is retried before exit 3: keep the window short, and its reconnect attempts
    # (which name the URL in their messages) are in the log that is searched for canaries.
    env["TRANSLATOR_ROOM_RECONNECT_SECONDS"] = "2"
    return env


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_refused_by_janus_leaks_nothing(start_janus: StartJanus, fmt: str) -> None:
    janus = await start_janus(api_secret=JANUS_API_SECRET)
    # A wrong API secret (itself a canary): Janus refuses the session.
    bot = await BotProcess.start(
        ["join", str(janus.room)], canary_environ(janus, fmt, SECRETS["TRANSLATOR_JANUS_API_SECRET"])
    )
    try:
        assert await bot.wait() == 3, bot.text
    finally:
        await bot.kill()
    assert "refused the bot" in bot.lines[-1], bot.text
    assert_no_canary(bot.text)


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_a_whole_call_then_janus_killed_leaks_nothing(start_janus: StartJanus, fmt: str) -> None:
    janus = await start_janus(api_secret=JANUS_API_SECRET)
    alice = SimParticipant(
        janus.url,
        janus.room,
        "Alice",
        "en",
        schedule=[fixture_speech("u1-en")],
        loop=True,
        api_secret=JANUS_API_SECRET,
    )
    await alice.join()
    bot = await BotProcess.start(["join", str(janus.room)], canary_environ(janus, fmt, JANUS_API_SECRET))
    try:
        await bot.wait_line(r"receiving audio from participant .* \(Alice\)")
        await asyncio.sleep(1.0)
        janus.kill()
        assert await bot.wait() == 3, bot.text
    finally:
        await bot.kill()
        await alice.close()
    assert "lost the room server" in bot.lines[-1], bot.text
    assert_no_canary(bot.text)
