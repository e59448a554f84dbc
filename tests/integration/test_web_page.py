"""The meeting page in a real browser: Debian's headless Chromium, driven by Playwright, joins a real
Janus from the page, next to an aiortc participant, and starts the interpreter from the page (the
web server runs `translator-bot join` against the package's fake realtime server).

Everything runs inside the private network namespace pytest enters (tests/conftest.py). Chromium skips
loopback *interfaces* when it gathers ICE candidates, not loopback-range addresses: in the namespace it
offers a host candidate on the `t0` link's 127.0.0.2, the address Janus uses, and connects with no
extra flag or address (seen here with Chromium 156; `--allow-loopback-in-peer-connection` only adds
candidates on `lo`, which Janus never pairs with). The browser's microphone is a fake device playing a
WAV made here: silence, one sentence, then silence (`%noloop`: played once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import soxr
from aiohttp import web

from tests.conftest import StartJanus
from translator_bot.fake.server import FakeRealtimeServer
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.listen import heard_utterances
from translator_bot.testbed.participant import (
    FRAME_SAMPLES,
    RATE,
    Recording,
    SimParticipant,
    answers_dtx,
    upsample_24k_to_48k,
)
from translator_bot.testbed.rig import FAKE_KEY, free_port
from translator_bot.web.access import AccessPolicy
from translator_bot.web.config import WebConfig, language_choices
from translator_bot.web.process_launcher import BotLauncher, default_command
from translator_bot.web.server import VENDOR_DIR, VENDOR_FILES, create_app

pytestmark = [pytest.mark.janus, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
# The README's picture: `TRANSLATOR_TEST_SCREENSHOT=docs/meeting-page.png pytest -k browser_talks` renews
# it; otherwise the screenshot goes to the test's temporary directory, leaving the checkout untouched.
SCREENSHOT_ENV = "TRANSLATOR_TEST_SCREENSHOT"
# The fake microphone is silent this long before it speaks: time to join, start the interpreter and
# let it subscribe to the browser, so the sentence reaches a bot that is listening.
MIC_LEAD_S = 14.0
SETTLE_S = 7.0  # after a sentence ends: turn detection + translation (streamed in real time) + playout

BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
]


def speech_wav(path: Path, utterance_id: str, lead_s: float, tail_s: float = 60.0) -> float:
    """A 48 kHz mono 16-bit WAV (what Chromium's fake capture reads): silence, the sentence, silence.
    Returns the sentence's duration."""
    speech = upsample_24k_to_48k(read_pcm(utterance(utterance_id)))
    pcm = np.concatenate(
        [np.zeros(int(lead_s * RATE), np.int16), speech, np.zeros(int(tail_s * RATE), np.int16)]
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return len(speech) / RATE


def silent_wav(path: Path, seconds: float) -> None:
    """A fake microphone that hears nothing (digital silence, 48 kHz mono 16-bit)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.zeros(int(seconds * RATE), np.int16).tobytes())


def as_recording(pcm: np.ndarray[Any, np.dtype[np.int16]], rate: int) -> Recording:
    """The page's recording in the shape the testbed's listener analysis reads (48 kHz, 20 ms frames)."""
    if rate != RATE:
        pcm = np.asarray(soxr.resample(pcm, rate, RATE), dtype=np.int16)
    frames = [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    return Recording(chunks=frames, arrivals=[i * FRAME_SAMPLES / RATE for i in range(len(frames))])


@dataclass
class WebServer:
    url: str
    launcher: BotLauncher


@pytest.fixture
def vendored() -> None:
    missing = [name for name in VENDOR_FILES if not (VENDOR_DIR / name).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not vendored: run scripts/vendor-janus-js.sh first")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtimeServer]:
    server = FakeRealtimeServer()
    await server.start()
    yield server
    await server.stop()


StartWeb = Callable[..., Awaitable[WebServer]]


@pytest.fixture
async def start_web(vendored: None, tmp_path: Path) -> AsyncIterator[StartWeb]:
    runners: list[web.AppRunner] = []

    async def start(
        janus: JanusServer,
        fake: FakeRealtimeServer | None,
        env_extra: dict[str, str] | None = None,
        token: str | None = None,
        **config: Any,
    ) -> WebServer:
        env = janus.environ()
        env.update(
            {
                "OPENAI_API_KEY": FAKE_KEY,
                "TRANSLATOR_ENGINE": "translate",
                "TRANSLATOR_METRICS_PORT": "0",
                "TRANSLATOR_TRANSCRIPT_DIR": str(tmp_path / "transcripts"),
                "TRANSLATOR_LOG_LEVEL": "INFO",
            }
        )
        if fake is not None:
            env["OPENAI_BASE_URL"] = fake.base_url
        env.update(env_extra or {})
        launcher = BotLauncher(default_command(), env, max_running=2)
        web_config = WebConfig(
            janus_url=janus.url, languages=tuple(language_choices(["en", "es", "de"])), **config
        )
        port = free_port()
        access = AccessPolicy.for_server("127.0.0.1", port, token=token)
        runner = web.AppRunner(create_app(web_config, launcher, access=access), access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return WebServer(f"http://127.0.0.1:{port}", launcher)

    yield start
    for runner in runners:
        await runner.cleanup()  # stops the interpreters it started


@pytest.fixture
async def playwright() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


async def launch(pw: Any, wav: Path | None, *, grant_microphone: bool = True) -> Any:
    args = list(BROWSER_FLAGS)
    if grant_microphone:
        args.append("--use-fake-ui-for-media-stream")
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    return await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


async def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": 1100, "height": 760})
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    await page.goto(url)
    await page.wait_for_function("document.getElementById('join').disabled === false")
    return page, console


def console_tail(console: list[str], lines: int = 40) -> str:
    """The page's last console lines without the Janus client's keepalive chatter."""
    noise = ("keepalive", "janus: ack", "janus: success", "Message sent", "Got a success")
    return "\n".join([line for line in console if not any(n in line for n in noise)][-lines:])


async def join_from_page(page: Any, name: str, lang: str) -> None:
    await page.fill("#name", name)
    await page.select_option("#lang", lang)
    await page.click("#join")


async def snapshot(page: Any) -> dict[str, Any]:
    value: dict[str, Any] = await page.evaluate("window.translatorBot.snapshot()")
    return value


async def wait_page(
    page: Any, what: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    last: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                last = await snapshot(page)
                if predicate(last):
                    return last
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"the page never reached '{what}' within {timeout_s}s; last state {last}"
        ) from None


async def test_a_person_in_a_browser_talks_with_an_aiortc_participant_through_the_interpreter(
    janus: JanusServer, fake: FakeRealtimeServer, start_web: StartWeb, playwright: Any, tmp_path: Path
) -> None:
    server = await start_web(janus, fake)
    wav = tmp_path / "alice-mic.wav"
    speech_s = speech_wav(wav, "u1-en", MIC_LEAD_S)
    beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "es")
    browser = await launch(playwright, wav)
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting={janus.room}&record=1&debug=1")
        assert await page.input_value("#meeting") == str(janus.room)  # prefilled from ?meeting=
        await join_from_page(page, "Alice", "en")
        mic_started = time.monotonic()  # the fake microphone starts with getUserMedia
        await wait_page(page, "waiting for the other person", lambda s: s["state"] == "waiting", 15)
        assert "Waiting for the other person" in await page.inner_text("#status")
        await beatriz.join()
        state = await wait_page(page, "in the call with Beatriz", lambda s: s["state"] == "in-call", 15)
        assert [p["name"] for p in state["participants"]] == ["Beatriz"], state
        assert state["interpreter"] == "absent"
        assert await page.is_visible("#start-interpreter")

        await page.click("#start-interpreter")
        state = await wait_page(page, "interpreter joined", lambda s: s["interpreter"] == "joined", 40)
        listening = await beatriz.subscribe_interpreter(timeout_s=20)
        await (await listening.wait_track(20)).wait_first_frame(20)
        ready_after = time.monotonic() - mic_started
        print(f"interpreter ready {ready_after:.1f}s after the browser joined")
        bot = server.launcher.get(str(janus.room))
        assert bot is not None and bot.state == "running", bot and bot.status()
        # The bot serves its own /metrics and /readyz on the port the server's API lists for it.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/api/interpreters") as reply:
                listed = (await reply.json())["interpreters"]
            assert [b["metrics_port"] for b in listed] == [bot.metrics_port], listed
            async with http.get(f"http://127.0.0.1:{bot.metrics_port}/metrics") as scraped:
                assert scraped.status == 200 and "translator_" in await scraped.text()
            async with http.get(f"http://127.0.0.1:{bot.metrics_port}/readyz") as ready:
                assert ready.status == 200, await ready.text()
        assert ready_after < MIC_LEAD_S - 1.0, (
            f"the interpreter was ready {ready_after:.1f}s after the browser joined, too late for the "
            f"fake microphone's sentence at {MIC_LEAD_S}s\n" + "\n".join(bot.lines)
        )
        # Only the feed meant for Alice and Beatriz's own voice: never the feed for Beatriz.
        kinds = sorted(s["kind"] for s in state["subscriptions"])
        assert kinds == ["interpreter", "original"], state

        # Alice's microphone speaks u1-en; Beatriz must hear it in Spanish.
        await asyncio.sleep(max(0.0, mic_started + MIC_LEAD_S + speech_s + SETTLE_S - time.monotonic()))
        # Beatriz answers; Alice must hear it in English, over Beatriz's ducked voice, with captions.
        beatriz.say("u2-es")
        # Beatriz's original voice drops to the slider's 15 % while the translation plays.
        await wait_page(
            page, "ducking under the translation", lambda s: s["ducking"] and s["originalGain"] < 0.2, 20
        )
        translation = utterance("u2-en").text
        try:
            await page.wait_for_selector(
                f"#captions .caption.final .translation:text-is('{translation}')", timeout=15000
            )
        except Exception:
            raise AssertionError(
                f"no caption {translation!r} on the page; state {await snapshot(page)}\n"
                + console_tail(console)
                + "\nbot:\n"
                + "\n".join(bot.lines)
            ) from None
        screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "meeting-page.png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(screenshot), full_page=True)
        await asyncio.sleep(SETTLE_S)
        # ...and comes back to full level once the translation has finished.
        state = await wait_page(
            page, "original back to full level", lambda s: not s["ducking"] and s["originalGain"] > 0.9, 10
        )
        recording = await page.evaluate("window.translatorBot.interpreterRecording()")
        originals = await page.locator("#captions .original").all_inner_texts()
        translations = await page.locator("#captions .translation").all_inner_texts()
        status_text = await page.inner_text("#status")
        form_shown = await page.is_visible("#join-form")
        interpreter_text = await page.inner_text("#interpreter-text")
    finally:
        await browser.close()
        with contextlib.suppress(Exception):
            await beatriz.close()

    pcm = np.frombuffer(base64.b64decode(recording["pcm16"]), dtype="<i2").astype(np.int16)
    assert recording["sampleRate"] > 0 and pcm.size == recording["samples"]
    heard_by_alice = [h.utterance_id for h in heard_utterances(as_recording(pcm, recording["sampleRate"]))]
    heard_by_beatriz = [h.utterance_id for h in heard_utterances(listening.recording)]
    report = (
        f"Alice heard {heard_by_alice}, Beatriz heard {heard_by_beatriz}\npage: {state}\n"
        + console_tail(console)
        + "\nbot:\n"
        + "\n".join(bot.lines)
    )
    assert heard_by_alice == ["u2-en"], report
    assert heard_by_beatriz == ["u1-es"], report
    assert state["interpreter"] == "joined" and state["state"] == "in-call", report
    assert "Interpreter joined" in interpreter_text and "Beatriz" in status_text and not form_shown
    assert utterance("u2-en").text in [t.strip() for t in translations], translations
    assert utterance("u2-es").text in [t.strip() for t in originals], originals
    captions = [c for c in state["captions"] if c["final"]]
    assert {c["speaker"] for c in captions} == {"Beatriz"}, captions  # never Alice's own words


async def test_an_unknown_meeting_is_reported(
    janus: JanusServer, start_web: StartWeb, playwright: Any, tmp_path: Path
) -> None:
    server = await start_web(janus, None)
    browser = await launch(playwright, None)
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting=987654")
        await join_from_page(page, "Alice", "en")
        state = await wait_page(page, "an error", lambda s: s["state"] == "error", 15)
        text = await page.inner_text("#status")
    finally:
        await browser.close()
    assert state["error"]["code"] == "meeting-not-found", (state, console)
    assert "Meeting 987654 does not exist" in text


async def test_a_denied_microphone_is_reported(
    janus: JanusServer, start_web: StartWeb, playwright: Any
) -> None:
    server = await start_web(janus, None)
    browser = await launch(playwright, None, grant_microphone=False)
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting={janus.room}")
        await join_from_page(page, "Alice", "en")
        state = await wait_page(page, "an error", lambda s: s["state"] == "error", 15)
        text = await page.inner_text("#status")
        visible_form = await page.is_visible("#join-form")
    finally:
        await browser.close()
    assert state["error"]["code"] == "microphone-denied", (state, console)
    assert "Microphone access was denied" in text and visible_form


async def test_an_unreachable_room_server_is_reported(
    janus: JanusServer, start_web: StartWeb, playwright: Any
) -> None:
    closed = f"ws://127.0.0.1:{free_port()}/"
    server = await start_web(janus, None, public_janus_url=closed)
    browser = await launch(playwright, None)
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting={janus.room}")
        await join_from_page(page, "Alice", "en")
        state = await wait_page(page, "an error", lambda s: s["state"] == "error", 20)
        text = await page.inner_text("#status")
    finally:
        await browser.close()
    assert state["error"]["code"] == "janus-unreachable", (state, console)
    assert "unreachable" in text and closed in text


async def test_an_interpreter_that_cannot_start_is_explained_on_the_page(
    janus: JanusServer, start_web: StartWeb, playwright: Any
) -> None:
    # No API key: `translator-bot join` stops at once with exit code 2 and names the setting.
    server = await start_web(janus, None, {"OPENAI_API_KEY": ""})
    browser = await launch(playwright, None)
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting={janus.room}")
        await join_from_page(page, "Alice", "en")
        await wait_page(page, "in the meeting", lambda s: s["state"] == "waiting", 15)
        await page.click("#start-interpreter")
        state = await wait_page(page, "interpreter exited", lambda s: s["interpreter"] == "exited", 30)
        text = await page.inner_text("#interpreter-text")
        button = await page.is_visible("#start-interpreter")
    finally:
        await browser.close()
    assert "settings are wrong" in text and "OPENAI_API_KEY is not set" in text, (
        state,
        console_tail(console),
    )
    assert button  # the person can try again once the server is fixed


async def test_the_page_trusts_only_the_interpreter_its_server_started(
    janus: JanusServer, fake: FakeRealtimeServer, start_web: StartWeb, playwright: Any, tmp_path: Path
) -> None:
    """Mallory joins labelled as Alice's interpreter (display and stream description): the page must
    treat her as a person, offer to start the interpreter, and later play only the real bot's feed."""
    server = await start_web(janus, fake)
    beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "es")
    browser = await launch(playwright, None)
    mallory: SimParticipant | None = None
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting={janus.room}")
        await join_from_page(page, "Alice", "en")
        state = await wait_page(page, "in the meeting", lambda s: s["state"] == "waiting", 15)
        alice_id = state["myId"]
        claim = json.dumps({"role": "interpreter", "for": alice_id, "lang": "en", "name": "Interpreter"})
        mallory = SimParticipant(
            janus.url, janus.room, "Interpreter -> Alice (en)", "en", declare="description", description=claim
        )
        await mallory.join()
        mallory.say("u1-en")
        state = await wait_page(
            page,
            "Mallory heard as a participant",
            lambda s: [x["kind"] for x in s["subscriptions"]] == ["original"] and len(s["participants"]) == 1,
            15,
        )
        assert state["interpreter"] == "absent", state
        assert await page.is_visible("#start-interpreter")
        await asyncio.sleep(2.0)  # nothing changes its mind later
        state = await snapshot(page)
        assert state["interpreter"] == "absent" and state["captions"] == [], state

        await beatriz.join()
        await page.click("#start-interpreter")
        state = await wait_page(page, "interpreter joined", lambda s: s["interpreter"] == "joined", 40)
        status_url = f"{server.url}/api/meetings/{janus.room}/interpreter"
        async with aiohttp.ClientSession() as http, http.get(status_url) as reply:
            status = await reply.json()
        bot_ids = {str(pid) for pid in status["participants"]}
        state = await wait_page(page, "three subscriptions", lambda s: len(s["subscriptions"]) == 3, 15)
        by_kind = {str(s["feed"]): s["kind"] for s in state["subscriptions"]}
        assert by_kind[str(mallory.id)] == "original", (state, console_tail(console))
        interpreters = [feed for feed, kind in by_kind.items() if kind == "interpreter"]
        assert len(interpreters) == 1 and interpreters[0] in bot_ids, (by_kind, bot_ids)
        people = {str(p["id"]) for p in state["participants"]}
        assert people == {str(beatriz.id), str(mallory.id)}, state
    finally:
        await browser.close()
        with contextlib.suppress(Exception):
            await beatriz.close()
        if mallory is not None:
            with contextlib.suppress(Exception):
                await mallory.close()


async def test_the_page_asks_for_the_access_code_the_server_requires(
    janus: JanusServer, start_web: StartWeb, playwright: Any
) -> None:
    # No API key: once the code is right, `translator-bot join` starts and stops at once (exit 2).
    server = await start_web(janus, None, {"OPENAI_API_KEY": ""}, token="open-sesame-1234")
    browser = await launch(playwright, None)
    try:
        page, console = await open_page(browser, f"{server.url}/?meeting={janus.room}")
        await join_from_page(page, "Alice", "en")
        await wait_page(page, "in the meeting", lambda s: s["state"] == "waiting", 15)
        assert await page.is_visible("#access-code")
        await page.click("#start-interpreter")
        await wait_page(
            page, "asking for the code", lambda s: "enter the access code" in s["interpreterMessage"], 10
        )
        await page.fill("#access-code", "open-sesame-12345")
        await page.click("#start-interpreter")
        state = await wait_page(
            page, "a wrong code", lambda s: "access code is wrong" in s["interpreterMessage"], 10
        )
        await asyncio.sleep(2.0)  # the server's status polls do not hide the refusal
        state = await snapshot(page)
        assert state["interpreter"] == "absent" and "access code is wrong" in state["interpreterMessage"], (
            state
        )
        assert await page.is_visible("#start-interpreter")
        assert server.launcher.running == [] and server.launcher.get(str(janus.room)) is None
        await page.fill("#access-code", "open-sesame-1234")
        await page.click("#start-interpreter")
        state = await wait_page(page, "interpreter exited", lambda s: s["interpreter"] == "exited", 30)
        text = await page.inner_text("#interpreter-text")
    finally:
        await browser.close()
    assert "settings are wrong" in text, (state, console_tail(console))


def janus_jsep(frames: list[str | bytes], kind: str) -> str | None:
    """The SDP of the first `kind` ("offer"/"answer") among the page's Janus WebSocket frames."""
    for frame in frames:
        message = json.loads(frame)
        jsep = message.get("jsep") if isinstance(message, dict) else None
        if isinstance(jsep, dict) and jsep.get("type") == kind:
            return str(jsep["sdp"])
    return None


async def bot_counters(port: int | None) -> dict[str, float]:
    """The bot's unlabelled counters from its /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as reply:
        text = await reply.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith("_total"):
            values[name] = float(value)
    return values


FRAMES_IN = "translator_frames_in_total"
PRESUMED_SILENCE = "translator_audio_input_presumed_silence_seconds_total"


@pytest.mark.parametrize("ask", [True, False], ids=["dtx", "dtx-off"])
async def test_a_silent_browser_costs_the_interpreter_a_few_packets_a_second(
    start_janus: StartJanus,
    fake: FakeRealtimeServer,
    start_web: StartWeb,
    playwright: Any,
    tmp_path: Path,
    ask: bool,
) -> None:
    """While the person in the browser is silent, the interpreter receives a few packets a second from
    the page instead of 50: the page's offer asks for Opus DTX (`usedtx=1` on Opus's fmtp line;
    `?dtx=0` does not ask) and Janus's answer agrees. Beatriz, an aiortc participant, sends DTX too,
    so the bot's own counter of decoded frames shows the page's part; a second aiortc listener
    subscribed to the page alone counts it directly."""
    janus = await start_janus(opus_dtx=True)  # what Janus >= 1.3.1 needs too
    server = await start_web(janus, fake)
    wav = tmp_path / "silent-mic.wav"
    silent_wav(wav, 120.0)
    beatriz = SimParticipant(janus.url, janus.room, "Beatriz", "es", dtx=True)
    listener = SimParticipant(janus.url, janus.room, "Carla", "es", publish=False)
    browser = await launch(playwright, wav)
    sent: list[str | bytes] = []
    received: list[str | bytes] = []

    def watch(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(payload))
        ws.on("framereceived", lambda payload: received.append(payload))

    try:
        page, console = await open_page(
            browser, f"{server.url}/?meeting={janus.room}{'' if ask else '&dtx=0'}"
        )
        page.on("websocket", watch)
        await join_from_page(page, "Alice", "en")
        state = await wait_page(page, "in the meeting", lambda s: s["state"] == "waiting", 15)
        await beatriz.join()
        assert beatriz.dtx, "the room did not agree to Beatriz's DTX"
        await listener.join()
        await listener.wait_for_publisher(lambda pub: str(pub.id) == str(state["myId"]), 15)
        recorder = await (await listener.subscribe(state["myId"])).wait_track(15)
        await page.click("#start-interpreter")
        await wait_page(page, "interpreter joined", lambda s: s["interpreter"] == "joined", 40)
        bot = server.launcher.get(str(janus.room))
        assert bot is not None and bot.state == "running", bot and bot.status()
        await asyncio.sleep(3.0)  # past the encoders' start and DTX's hangover
        # Frames the listener decoded, one per packet that came (not the silence it filled in for the
        # pauses between them, which are packets never sent).
        rec = recorder.recording
        before, counters, started = (
            rec.frames - rec.paused_frames,
            await bot_counters(bot.metrics_port),
            time.monotonic(),
        )
        await asyncio.sleep(6.0)
        elapsed = time.monotonic() - started
        decoded_rate = (rec.frames - rec.paused_frames - before) / elapsed
        after = await bot_counters(bot.metrics_port)
        bot_rate = (after.get(FRAMES_IN, 0.0) - counters.get(FRAMES_IN, 0.0)) / elapsed
        presumed = after.get(PRESUMED_SILENCE, 0.0) - counters.get(PRESUMED_SILENCE, 0.0)
        state = await snapshot(page)
    finally:
        await browser.close()
        for person in (beatriz, listener):
            with contextlib.suppress(Exception):
                await person.close()
    offer, answer = janus_jsep(sent, "offer"), janus_jsep(received, "answer")
    report = (
        f"ask={ask}: from the silent page a listener decoded {decoded_rate:.1f} packets/s; the bot decoded "
        f"{bot_rate:.1f} frames/s from the page and Beatriz together and presumed {presumed:.1f} s of "
        f"silence in {elapsed:.1f} s; page {state.get('dtx')}"
    )
    print(report)
    if ask:
        # Measured: ~4.7 a second from Chromium 156 (its DTX keep-alives), against 50 without DTX;
        # the bounds leave room for a noisy machine.
        assert decoded_rate < 10 and bot_rate < 15, report
    else:
        assert decoded_rate > 40 and bot_rate > 40, report
    assert offer is not None and answer is not None, (len(sent), len(received), console_tail(console))
    assert answers_dtx(offer) is ask, offer
    assert answers_dtx(answer) is ask, answer  # Janus 1.1 grants what is asked, whatever the room says
    assert state.get("dtx") == {"asked": ask, "answered": ask}, state
