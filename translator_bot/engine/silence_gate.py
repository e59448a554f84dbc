"""When a lane may stop sending silence to the model, and how it starts again: pure rules.

Every lane streams its speaker's audio to the model, silence included: 50 (realtime) or 25
(translate) WebSocket messages a second for the whole meeting, and the provider bills the silence as
input audio. Once the model can gain nothing more from the silence, the lane "rests": it sends no
appends until the speaker makes a sound again, then sends the pre-roll (the audio just before that
sound) and carries on, so no first syllable is lost.

"Nothing more to gain" is the provider's protocol, per engine:
- realtime: the server VAD ends a turn after `silence_duration_ms` of silence on the input's clock
  (semantic VAD waits up to its eagerness's maximum, 4 s at `auto`); the lane rests only once that much
  quiet (plus a margin) was sent and the server has no speech open, so every turn is committed.
- translate: the endpoint speaks on its input's clock, so it must keep receiving input until the
  translation of what was said has come out. The lane rests only with no open item, and once the
  endpoint was heard idle (an all-zero heartbeat) after the quiet had lasted long enough for it to
  have seen the end of the speech; if the endpoint sends no heartbeats, after a long quiet with no open
  item. The quiet kept before a rest is at least the segment gap, so the endpoint's clock still shows
  a pause between the sentences around it.

"Quiet" is measured against a floor far below speech: a 20 ms frame below `SILENCE_FLOOR_DBFS` is
silent. That is 20 dB under the level the server VAD's default threshold maps to (-40 dBFS,
`audio.vad.server_vad_level_dbfs(0.5)`) and the level of its lowest threshold
(`server_vad_level_dbfs(0.0)`), so a quiet talker the model could hear is never cut: in a noisy room
the lane simply never rests (it costs what it did before, and loses nothing).
"""

from __future__ import annotations

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.pcm import ms_to_samples
from translator_bot.audio.vad import server_vad_level_dbfs

SILENCE_FLOOR_DBFS = server_vad_level_dbfs(0.0)  # -60 dBFS
# The server VAD's end of turn lands on its own frames, a little after ours: this much more quiet.
TURN_END_MARGIN_MS = 300
# Semantic VAD's longest wait after speech at `auto` (= medium) eagerness: 4 s (the SDK's docstring).
SEMANTIC_VAD_MAX_WAIT_MS = 4000
# Audio sent again before the first sound after a rest: covers the server VAD's prefix padding and
# the quiet start of a word (a fricative, a breath) that stays below the floor.
PREROLL_EXTRA_MS = 200
MIN_PREROLL_MS = 300
# translate: a heartbeat counts as "idle" only once the endpoint had this much quiet to find the end
# of the speech in (its own sentence end is a few hundred ms of pause).
TRANSLATE_IDLE_AFTER_QUIET_MS = 1000
# translate without heartbeats: no open item after this long a quiet means nothing more is coming
# (the engine itself gives up on a translation after `TRANSLATION_WAIT_S`, the same 10 s).
TRANSLATE_QUIET_FALLBACK_MS = 10_000


def realtime_rest_after_ms(vad_type: str, silence_duration_ms: int) -> int:
    """Quiet input the realtime model needs after speech before it can end the turn."""
    wait = SEMANTIC_VAD_MAX_WAIT_MS if vad_type == "semantic_vad" else silence_duration_ms
    return wait + TURN_END_MARGIN_MS


def preroll_ms(prefix_padding_ms: int) -> int:
    """Audio before the first sound after a rest that is sent with it."""
    return max(MIN_PREROLL_MS, prefix_padding_ms) + PREROLL_EXTRA_MS


def may_rest(quiet_samples: int, rest_after_ms: int, settled: bool) -> bool:
    """The lane may stop sending: enough quiet was sent and the model owes nothing that needs more."""
    return settled and quiet_samples >= ms_to_samples(rest_after_ms, MODEL_RATE)


def realtime_settled(speech_open: bool, locally_voiced: bool) -> bool:
    """Nothing needs more input: the server has no turn open and the speech gate hears no speech."""
    return not speech_open and not locally_voiced


def translate_settled(items_open: bool, quiet_since: int, idle_heard_at: int | None, input_end: int) -> bool:
    """Nothing needs more input on the translate endpoint (positions are absolute input samples):
    no original waits for its translation nor is one streaming, and either the endpoint was heard
    idle (`idle_heard_at`: the input sent when its heartbeat arrived) after it had had enough of
    the quiet that began at `quiet_since`, or the quiet has lasted so long that nothing is coming."""
    if items_open:
        return False
    if idle_heard_at is not None and idle_heard_at - quiet_since >= ms_to_samples(
        TRANSLATE_IDLE_AFTER_QUIET_MS, MODEL_RATE
    ):
        return True
    return input_end - quiet_since >= ms_to_samples(TRANSLATE_QUIET_FALLBACK_MS, MODEL_RATE)
