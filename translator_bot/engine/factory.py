"""Which engine session a lane gets, and loading the engines off the start-up path.

Importing a model engine (its session machinery and wire models, ~20-50 ms of CPU) and building its
options (which reads the glossary file) belong neither on the event loop nor before the bot's feeds are
in the room: `MeetingEngines.load()` does both once per meeting in a worker thread, which the meeting
starts when the first lanes are planned and their listeners' feeds are in the room; the lanes open once
it is done. Nothing here imports an engine at module level (a test checks that `join` starts without
them), and no engine imports the `openai` SDK (another test runs a session of each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from translator_bot.engine.base import EngineSession, LaneSpec
from translator_bot.settings import Settings

# What opens a lane's session once the engine is loaded.
EngineBuilder = Callable[[LaneSpec], EngineSession]


def engine_builder(settings: Settings) -> EngineBuilder:
    """Import the configured engine and build its options (reading the glossary file): blocking, so run
    in a worker thread. Every lane of the meeting is then built with the same options."""
    engine = settings.effective_engine
    if engine == "passthrough":
        from translator_bot.engine.passthrough import PassthroughSession

        return lambda spec: PassthroughSession(None, spec, settings)
    from translator_bot.engine.endpoint import endpoint_for
    from translator_bot.engine.options import EngineOptions

    endpoint = endpoint_for(settings, engine)
    options = EngineOptions.from_settings(settings)
    if engine == "translate":
        from translator_bot.engine.translate import TranslateSession

        return lambda spec: TranslateSession(endpoint, spec, options)
    from translator_bot.engine.realtime import RealtimeSession

    return lambda spec: RealtimeSession(endpoint, spec, options)


class MeetingEngines:
    """The engine sessions of one meeting's lanes: `load()` once (in a worker thread), then `create()`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._builder: EngineBuilder | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._builder is not None

    async def load(self) -> None:
        """Import the engine and build its options in a worker thread, once; a second caller waits for
        the first. A load that fails (an unreadable glossary) raises, and the next call tries again."""
        async with self._lock:
            if self._builder is None:
                self._builder = await asyncio.to_thread(engine_builder, self._settings)

    def create(self, spec: LaneSpec) -> EngineSession:
        if self._builder is None:
            raise RuntimeError("the engines are not loaded: await load() first")
        return self._builder(spec)
