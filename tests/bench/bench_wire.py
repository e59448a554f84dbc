"""What the model engines' wire layer costs: loading an engine, and parsing or building one event.

    python -m tests.bench.bench_wire [--runs 7] [--baseline-ref 06e1c12]

- engine load: in a fresh process that has imported what `join` imports before its engine loads, the
  CPU time and the resident memory added by `MeetingEngines.load()`'s work (import the engine, build its
  options, make a lane's session) and the first parse of a server event (which built the SDK's union
  validator, before the engines had their own models). Per engine, per tree (this checkout and, with
  --baseline-ref, that commit in a temporary worktree), alternating the trees run by run; medians. A tree
  older than `MeetingEngines` (perf-baseline) imported its engines at start-up: bench_startup compares it.
- per event: the engines' wire models against the SDK's models (`engine.protocol`, which the engines
  used before) on the same frames, in this process: parse a server event, build and encode an append.
  Medians of 7 repeats.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from typing import Any

from tests.bench.baseline import SourceTree, add_arguments, from_arguments, legend, machine_load
from tests.bench.figures import Figure, median, run_order, table

ENGINES = ("translate", "realtime")
Parse = Callable[[str], object]

LOAD = """
import sys, time
def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
import translator_bot.app, translator_bot.cli, translator_bot.interpreter.meeting
from pydantic import SecretStr
from translator_bot.engine.base import LaneSpec
from translator_bot.engine import factory
from translator_bot.languages import parse_language
from translator_bot.settings import Settings
settings = Settings(openai_api_key=SecretStr("sk-bench"), engine=sys.argv[1])
spec = LaneSpec("ana->es", "Ana", parse_language("en"), "Bruno", parse_language("es"))
rss, cpu = rss_mib(), time.process_time()
if not hasattr(factory, "engine_builder"):
    sys.exit(3)  # a tree from before the engines loaded apart from start-up (perf-baseline)
session = factory.engine_builder(settings)(spec)
session._engine.parse('{"type": "error", "event_id": "e", "error": {"type": "server_error", "message": "m"}}')
print((time.process_time() - cpu) * 1000, rss_mib() - rss)
"""


def load_once(tree: SourceTree, engine: str) -> tuple[float, float]:
    """CPU ms and MiB of one engine load in a fresh process of `tree`."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD, engine],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **tree.bot_env()},
        cwd=tempfile.gettempdir(),
    )
    if done.returncode == 3:
        raise SystemExit(
            f"{tree.describe} imports its engines on join's start-up path, not in a load of their own: "
            "compare with a tree that has MeetingEngines (06e1c12 or later)"
        )
    if done.returncode != 0:
        raise SystemExit(f"{tree.describe}: the engine load failed: {done.stderr[-2000:]}")
    cpu_ms, mib = map(float, done.stdout.split())
    return cpu_ms, mib


def engine_load(trees: list[SourceTree], runs: int) -> list[Figure]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _, tree in run_order(trees, runs):
        for engine in ENGINES:
            samples.setdefault((engine, tree.label), []).append(load_once(tree, engine))
    figures = []
    for engine in ENGINES:
        for index, (name, unit) in enumerate((("load CPU", "ms"), ("load memory", "MiB"))):
            values = {t.label: median(s[index] for s in samples[(engine, t.label)]) for t in trees}
            figures.append(Figure(f"{engine} engine {name}", unit, values, decimals=0 if index == 0 else 1))
    return figures


def per_call_us(call: Callable[[], object], number: int = 2000) -> float:
    call()
    return statistics.median(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def parse_figure(name: str, raw: str, sdk: Parse, ours: Parse) -> Figure:
    return Figure(name, "us", {"SDK": per_call_us(lambda: sdk(raw)), "wire": per_call_us(lambda: ours(raw))})


def per_event() -> list[Figure]:
    from translator_bot.engine import protocol, wire_realtime, wire_translate
    from translator_bot.engine.wire import encode_event

    audio = base64.b64encode(bytes(range(256)) * 38).decode()  # 9.7 kB of pcm16: 200 ms at 24 kHz
    part = {"event_id": "e", "response_id": "r", "item_id": "i", "output_index": 0, "content_index": 0}
    done = {
        "type": "response.done",
        "event_id": "e",
        "response": {
            "id": "r",
            "status": "completed",
            "output": [
                {
                    "id": "i",
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_audio", "transcript": "¿Dónde está la estación?"}],
                }
            ],
            "usage": {"input_tokens": 100, "output_tokens": 20, "input_token_details": {"cached_tokens": 64}},
        },
    }
    frames: list[tuple[str, dict[str, Any], Parse, Parse]] = [
        (
            "parse realtime audio delta (100 ms)",
            {"type": "response.output_audio.delta", **part, "delta": audio[:6400]},
            protocol.parse_server_event,
            wire_realtime.parse_server_event,
        ),
        (
            "parse realtime response.done",
            done,
            protocol.parse_server_event,
            wire_realtime.parse_server_event,
        ),
        (
            "parse translate audio delta (200 ms)",
            {"type": "session.output_audio.delta", "event_id": "e", "delta": audio, "elapsed_ms": 200},
            protocol.parse_translation_server_event,
            wire_translate.parse_server_event,
        ),
    ]
    figures = [parse_figure(name, json.dumps(frame), sdk, ours) for name, frame, sdk, ours in frames]
    from openai.types.realtime import RealtimeTranslationInputAudioBufferAppendEvent as SdkAppend

    pcm = base64.b64encode(bytes(1920)).decode()  # 40 ms

    def sdk_append() -> str:
        return encode_event(SdkAppend(type="session.input_audio_buffer.append", audio=pcm))

    def wire_append() -> str:
        return encode_event(wire_translate.InputAudioAppend(audio=pcm))

    figures.append(
        Figure(
            "build + encode an append (40 ms)",
            "us",
            {"SDK": per_call_us(sdk_append), "wire": per_call_us(wire_append)},
        )
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    add_arguments(parser)
    parser.add_argument("--runs", type=int, default=7, help="engine loads per engine and tree")
    args = parser.parse_args()
    with from_arguments(args) as trees:
        load = engine_load(trees, args.runs)
        print(f"\nengine load, medians of {args.runs} fresh processes per engine and tree")
        print(f"{legend(trees)}\n{machine_load()}\n{table(load, [t.label for t in trees])}", flush=True)
    print(f"\nper event, microseconds (median of 7 x 2000 calls)\n{machine_load()}")
    print(table(per_event(), ["SDK", "wire"]))


if __name__ == "__main__":
    main()
