"""The demo meeting itself: Janus, the model (local fake or the real API), the bot as `translator-bot
join`, and two simulated people taking turns; progress is shown as it happens and the results are
left in the output directory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from translator_bot.demo.network import DemoNetwork
from translator_bot.demo.observe import finished_speaking, observe, wait_for_translation, write_wav
from translator_bot.demo.plot import PlotsUnavailable, draw_timeline
from translator_bot.demo.report import TurnResult, cost_from_metrics, summarise, summary_text, write_summary
from translator_bot.demo.script import Person, Turn
from translator_bot.demo.timeline import TimelineRecorder, save_timeline
from translator_bot.languages import parse_language
from translator_bot.testbed.janus import JanusServer, JanusServerError
from translator_bot.testbed.participant import Recording
from translator_bot.testbed.rig import InterpreterRig

Show = Callable[[str], None]
Provider = Literal["fake", "openai"]

MEETING_ID = 1234
LANES_READY_S = 20.0
# Files from an earlier run that this run replaces; anything else in the directory is left alone.
OWNED_PATTERNS = (
    "*-heard.wav",
    "summary.json",
    "summary.txt",
    "bot.log",
    "model.log",
    "bot-metrics.txt",
    "meeting-*.jsonl",
    "meeting-*.txt",
    "timeline.json",
    "timeline.png",
)


class DemoFailed(RuntimeError):
    """The meeting could not be set up; the message says what failed and what to look at."""


@dataclass(frozen=True)
class DemoConfig:
    output_dir: Path
    people: tuple[Person, Person]
    plan: list[Turn]
    engine: str
    provider: Provider
    network: DemoNetwork
    turn_timeout_s: float = 20.0
    dtx: bool = False  # the room offers Opus DTX and the people ask for it
    # Provider settings for the bot's process beyond its inherited environment (from the env file).
    bot_env: Mapping[str, str] = field(default_factory=dict)


def _language_name(base: str) -> str:
    return parse_language(base).name


def _clear_previous_run(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for pattern in OWNED_PATTERNS:
        for path in directory.glob(pattern):
            path.unlink()


async def _play_turn(
    rig: InterpreterRig, turn: Turn, timeout_s: float, show: Show, timeline: TimelineRecorder
) -> TurnResult:
    speaker = rig.people[turn.speaker.name]
    listener = rig.people[turn.listener.name]
    assert speaker.listening is not None and listener.listening is not None
    already_said = len(speaker.sim.spoken)
    start = time.monotonic()
    show(f'[{turn.number}] {turn.speaker.name} ({_language_name(turn.speaker.language)}) says: "{turn.text}"')
    rig.say(turn.speaker.name, turn.utterance_id)
    spoken = await finished_speaking(speaker.sim, already_said, timeout_s=30)
    assert spoken.end is not None
    await wait_for_translation(listener.listening.recording, start, spoken.end, timeout_s)
    seen = await observe(
        listener.listening.recording,
        speaker.listening.recording,
        listener.listening.messages,
        start,
        turn.expected_id,
    )
    latency = None if seen.first_arrival is None else round((seen.first_arrival - spoken.end) * 1000)
    timeline.spoke(turn.speaker.name, spoken.start, spoken.end, turn.text)
    timeline.translated(turn.speaker.name, turn.listener.name, spoken.end, seen.first_arrival)
    result = TurnResult(
        turn=turn,
        spoken_ms=round((spoken.end - spoken.start) * 1000),
        heard_id=seen.heard_id,
        heard_ms=seen.heard_ms,
        latency_ms=latency,
        caption=seen.caption,
        leaked_ms=seen.leaked_ms,
        recognised=rig.fake is not None or rig.engine == "passthrough",
    )
    what = seen.caption or (turn.expected_text if result.delivered else None)
    heard = f'"{what}"' if what else ("speech" if seen.heard_ms else "nothing")
    late = "" if latency is None else f", {latency / 1000:.2f} s after {turn.speaker.name} stopped"
    show(
        f"    {turn.listener.name} hears ({_language_name(turn.listener.language)}): {heard}{late}"
        f"  [{result.verdict}]"
    )
    return result


@contextlib.contextmanager
def _model_log(path: Path) -> Iterator[None]:
    """What the local model server heard and answered, at INFO, whatever the console shows."""
    logger = logging.getLogger("translator_bot.fake")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    for console in logging.getLogger().handlers:
        if console.level == logging.NOTSET:
            console.setLevel(logging.getLogger().level)
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


async def run_demo(config: DemoConfig, show: Show) -> int:
    """Play the meeting; 0 when every utterance reached the other person in their language."""
    _clear_previous_run(config.output_dir)
    with _model_log(config.output_dir / "model.log"):
        return await _run_meeting(config, show)


async def _run_meeting(config: DemoConfig, show: Show) -> int:
    people, plan = config.people, config.plan
    janus = JanusServer(room=MEETING_ID, ice_address=config.network.ice_address, opus_dtx=config.dtx)
    rig: InterpreterRig | None = None
    results: list[TurnResult] = []
    bot_code: int | None = None
    timeline = TimelineRecorder()
    cost: dict[str, object] | None = None
    try:
        try:
            await janus.start()
        except JanusServerError as exc:
            raise DemoFailed(f"Janus did not start: {exc}") from exc
        show(f"Janus is up at {janus.url}, meeting {MEETING_ID}; WebRTC in a {config.network.describe()}")
        rig = InterpreterRig(
            janus,
            config.engine,
            transcript_dir=config.output_dir.resolve(),
            use_fake=config.provider == "fake",
            env=dict(config.bot_env),
            dtx=config.dtx,
        )
        show(
            f"starting the bot: translator-bot join {MEETING_ID} --engine {config.engine} "
            + ("(model: the local fake server)" if config.provider == "fake" else "(model: the OpenAI API)")
        )
        try:
            lanes = await _start(rig, people)
        except (AssertionError, TimeoutError) as exc:
            raise DemoFailed(f"the meeting did not come together: {exc}") from exc
        if rig.fake is not None:
            show(f"local fake model server at {rig.fake.base_url}")
        show(
            "in the meeting: "
            + " and ".join(f"{p.name} ({_language_name(p.language)})" for p in people)
            + ", each listening to the interpreter feed meant for them"
        )
        waiting = {lane: state for lane, state in lanes.items() if state != "connected"}
        if lanes and not waiting:
            show(f"the interpreter is ready: it hears both people, {len(lanes)} lanes connected to the model")
        else:
            show(f"the model is not answering yet (lanes: {waiting or 'none'}); speaking anyway")
        for turn in plan:
            results.append(await _play_turn(rig, turn, config.turn_timeout_s, show, timeline))
            await asyncio.sleep(0.5)
        with contextlib.suppress(Exception):
            metrics = await rig.metrics_text()
            (config.output_dir / "bot-metrics.txt").write_text(metrics, encoding="utf-8")
            cost = cost_from_metrics(metrics)
        bot_code = await rig.stop_bot()
        show(f"the bot left the meeting (exit code {bot_code}) and wrote the transcript")
    finally:
        if rig is not None:
            _save_outputs(rig, config.output_dir)
            _save_timeline(rig, timeline, config, show)
            with contextlib.suppress(Exception):
                await rig.aclose()
        await janus.stop()

    summary = summarise(
        results,
        context={
            "engine": config.engine,
            "provider": config.provider,
            "network": config.network.mode,
            "meeting": MEETING_ID,
            "transcripts": sorted(p.name for p in config.output_dir.glob("meeting-*")),
            "estimated_cost_usd": cost,
        },
        bot_exit_code=bot_code,
    )
    write_summary(config.output_dir, summary)
    show("")
    show(summary_text(summary).rstrip())
    show(
        f"outputs in {config.output_dir}/: " + ", ".join(sorted(p.name for p in config.output_dir.iterdir()))
    )
    if summary["result"] == "ok":
        return 0
    for line in failure_evidence(config.output_dir):
        show(line)
    return 1


def failure_evidence(directory: Path, most: int = 40) -> list[str]:
    """The lines of the run's logs that say where an utterance was lost: what the model server heard,
    when the bot first heard each person, and every warning. Shown on the console when the demo fails,
    because on some machines (CI) the console is all that is kept."""
    wanted = {
        "model.log": (" heard ", " WARNING ", " ERROR "),
        "bot.log": ("first audio from", "ICE completed", " WARNING ", " ERROR "),
    }
    lines: list[str] = []
    for name, markers in wanted.items():
        path = directory / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = [line for line in text.splitlines() if any(marker in line for marker in markers)]
        lines.append(f"from {name} ({len(found)} relevant lines, the last {min(most, len(found))}):")
        lines.extend(f"  {line}" for line in found[-most:])
    return lines


async def _start(rig: InterpreterRig, people: tuple[Person, Person]) -> dict[str, str]:
    """Everyone in the room and heard by the bot, then up to LANES_READY_S for every lane's model
    session to connect.

    Speech before a lane connects is kept and sent late, so waiting for lanes is not needed for
    delivery; it makes the first latency figure mean the same as the others. Returns lane -> state.
    """
    async with asyncio.timeout(90):
        await rig.start([(p.name, p.language) for p in people])
    lanes: dict[str, str] = {}
    deadline = time.monotonic() + LANES_READY_S
    while time.monotonic() < deadline:
        _, health = await rig.health()
        lanes = {str(k): str(v) for k, v in health.get("lanes", {}).items()}
        if len(lanes) >= 2 and all(state == "connected" for state in lanes.values()):
            break
        await asyncio.sleep(0.1)
    return lanes


def _save_outputs(rig: InterpreterRig, directory: Path) -> None:
    for name, person in rig.people.items():
        recording = person.listening.recording if person.listening is not None else Recording()
        write_wav(directory / f"{name}-heard.wav", recording)
    if rig.bot is not None:
        (directory / "bot.log").write_text(rig.bot.text + "\n", encoding="utf-8")


def _save_timeline(rig: InterpreterRig, recorder: TimelineRecorder, config: DemoConfig, show: Show) -> None:
    """timeline.json always; timeline.png when the plots extra is installed (else one line why)."""
    directory = config.output_dir
    heard = {}
    for person in config.people:
        listening = rig.people[person.name].listening if person.name in rig.people else None
        heard[person.name] = (person.language, listening.recording if listening is not None else Recording())
    timeline = recorder.build(heard)
    save_timeline(timeline, directory / "timeline.json")
    try:
        draw_timeline(timeline, directory / "timeline.png")
    except PlotsUnavailable as exc:
        show(f"no timeline picture: {exc}")
