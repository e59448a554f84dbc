"""Which engine session a lane gets.

The engines are imported here, at start-up, not when the first lane opens: importing them (the
`openai` SDK's event models) takes about a second, which would stall the event loop while audio flows.
"""

from __future__ import annotations

from translator_bot.engine.base import EngineSession, LaneSpec
from translator_bot.engine.endpoint import endpoint_for
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.passthrough import PassthroughSession
from translator_bot.engine.realtime import RealtimeSession
from translator_bot.engine.translate import TranslateSession
from translator_bot.settings import Settings


def create_engine(settings: Settings, spec: LaneSpec) -> EngineSession:
    """The session for the configured (or provider-default) engine, pointed at its endpoint."""
    engine = settings.effective_engine
    if engine == "passthrough":
        return PassthroughSession(None, spec, settings)
    endpoint = endpoint_for(settings, engine)
    options = EngineOptions.from_settings(settings)
    if engine == "translate":
        return TranslateSession(endpoint, spec, options)
    return RealtimeSession(endpoint, spec, options)
