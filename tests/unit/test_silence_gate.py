"""The silence gate: when a lane stops sending silence, how it wakes, and what it never cuts.

The rules are pure (`engine.silence_gate`); the intake carries them out on the lane's input; the link's
timeline keeps the server's audio clock meaningful across a rest. The recorded fixtures stand in for
talkers: as recorded (about -26 dBFS), 30 dB quieter over a faint room, and drowned in room noise.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import numpy.typing as npt
import pytest

from translator_bot.audio.formats import MODEL_RATE
from translator_bot.audio.vad import frame_levels, server_vad_level_dbfs
from translator_bot.engine.feed import AudioFeed
from translator_bot.engine.intake import Intake
from translator_bot.engine.options import EngineOptions
from translator_bot.engine.realtime import RealtimeEngine, RealtimeLinkState
from translator_bot.engine.silence_gate import (
    SILENCE_FLOOR_DBFS,
    may_rest,
    preroll_ms,
    realtime_rest_after_ms,
    realtime_settled,
    translate_settled,
)
from translator_bot.engine.step import At
from translator_bot.engine.timeline import InputTimeline
from translator_bot.engine.translate import SEGMENT_GAP_MS, TranslateEngine, TranslateLinkState
from translator_bot.engine.wire_realtime import parse_server_event
from translator_bot.engine.wire_translate import parse_server_event as parse_translation_server_event
from translator_bot.fixtures import read_pcm, utterance

MS = MODEL_RATE // 1000
FRAME = 20 * MS


def silence(ms: int) -> npt.NDArray[np.int16]:
    return np.zeros(ms * MS, dtype=np.int16)


def speech(uid: str = "u1-en", gain_db: float = 0.0) -> npt.NDArray[np.int16]:
    pcm = read_pcm(utterance(uid)).astype(np.float64) * 10 ** (gain_db / 20)
    return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)


def noise(ms: int, level_dbfs: float, seed: int = 1) -> npt.NDArray[np.float64]:
    rms = 32768 * 10 ** (level_dbfs / 20)
    return np.random.default_rng(seed).normal(0.0, rms, ms * MS)


def mixed(voice: npt.NDArray[np.int16], room_dbfs: float, lead_ms: int = 0) -> npt.NDArray[np.int16]:
    signal = np.concatenate([silence(lead_ms), voice]).astype(np.float64)
    signal += noise(len(signal) // MS + 1, room_dbfs)[: len(signal)]
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def longest_quiet_ms(pcm: npt.NDArray[np.int16]) -> tuple[int, int]:
    """(longest quiet the gate measured while `pcm` played, quiet at its end), frame by frame."""
    feed = AudioFeed(60.0)
    longest = 0
    for start in range(0, len(pcm), FRAME):
        feed.push(pcm[start : start + FRAME].tobytes())
        longest = max(longest, feed.end - feed.quiet_since)
    return longest // MS, (feed.end - feed.quiet_since) // MS


# --- the rules -----------------------------------------------------------------------------------
def test_the_realtime_lane_keeps_sending_until_the_server_vad_can_end_the_turn() -> None:
    assert realtime_rest_after_ms("server_vad", 500) == 800  # silence_duration_ms + margin
    assert realtime_rest_after_ms("server_vad", 1200) == 1500
    assert realtime_rest_after_ms("semantic_vad", 500) == 4300  # semantic VAD waits up to 4 s
    assert not may_rest(799 * MS, 800, settled=True)
    assert may_rest(800 * MS, 800, settled=True)
    assert not may_rest(60_000 * MS, 800, settled=False)  # a turn still open needs its silence


def test_the_realtime_lane_is_settled_only_with_no_turn_open_and_no_speech() -> None:
    assert realtime_settled(speech_open=False, locally_voiced=False)
    assert not realtime_settled(speech_open=True, locally_voiced=False)
    assert not realtime_settled(speech_open=False, locally_voiced=True)


def test_the_translate_lane_waits_for_the_endpoint_to_be_idle_after_the_speech() -> None:
    quiet_since = 100 * MS
    # An original waiting for its translation, or one streaming: never.
    assert not translate_settled(True, quiet_since, quiet_since + 5000 * MS, quiet_since + 60_000 * MS)
    # A heartbeat before the endpoint could have seen the end of the speech proves nothing.
    assert not translate_settled(False, quiet_since, quiet_since + 500 * MS, quiet_since + 3000 * MS)
    assert not translate_settled(False, quiet_since, None, quiet_since + 3000 * MS)
    assert translate_settled(False, quiet_since, quiet_since + 1000 * MS, quiet_since + 3000 * MS)
    # An endpoint that sends no heartbeat: nothing open after a long quiet means nothing is coming.
    assert translate_settled(False, quiet_since, None, quiet_since + 10_000 * MS)
    # The translate lane keeps a segment's gap on the endpoint's clock.
    assert TranslateEngine(EngineOptions()).rest_after_ms() == SEGMENT_GAP_MS


def test_the_preroll_covers_the_server_vads_prefix_padding() -> None:
    assert preroll_ms(300) == 500
    assert preroll_ms(800) == 1000
    assert preroll_ms(0) == 500


# --- quiet noise is not digital silence ----------------------------------------------------------
def test_the_floor_is_far_below_any_speech_the_server_vad_hears() -> None:
    assert SILENCE_FLOOR_DBFS == server_vad_level_dbfs(0.0) == -60.0
    assert server_vad_level_dbfs(EngineOptions().vad_threshold) - 20 >= SILENCE_FLOOR_DBFS


@pytest.mark.parametrize("uid", ["u1-en", "u2-es", "u3-de", "u4-en"])
def test_a_talker_is_never_quiet_long_enough_to_rest_mid_sentence(uid: str) -> None:
    rest_after = min(realtime_rest_after_ms("server_vad", 200), SEGMENT_GAP_MS)
    loud, _ = longest_quiet_ms(speech(uid))
    # 30 dB quieter than recorded (about -56 dBFS median, below the server VAD's default level),
    # in a faint room: still never quiet for long inside the sentence.
    voice = speech(uid, gain_db=-30)
    assert np.median(frame_levels(voice[np.abs(voice) > 0], FRAME)) < -50
    quiet, _ = longest_quiet_ms(mixed(voice, room_dbfs=-75))
    assert loud < rest_after and quiet < rest_after, (loud, quiet)


def test_a_noisy_room_never_counts_as_quiet() -> None:
    room = mixed(np.concatenate([speech("u1-en"), silence(5000)]), room_dbfs=-50)
    longest, _ = longest_quiet_ms(room)
    assert longest <= 20  # the lane keeps sending: it costs what it did, and loses nothing


def test_a_faint_room_after_speech_counts_as_quiet() -> None:
    _, trailing = longest_quiet_ms(mixed(np.concatenate([speech("u1-en"), silence(3000)]), room_dbfs=-75))
    assert 3000 <= trailing <= 3100  # the silence, and the recording's own last quiet frames


# --- the intake: rest, skip, wake with the pre-roll ----------------------------------------------
def push_frames(intake: Intake, pcm: npt.NDArray[np.int16]) -> list[bytes]:
    """Push `pcm` in room frames and take every append handed out meanwhile."""
    sent: list[bytes] = []
    for start in range(0, len(pcm), FRAME):
        intake.push(pcm[start : start + FRAME].tobytes())
        while (chunk := intake.next_chunk()) is not None:
            sent.append(chunk)
    return sent


def test_a_resting_lane_sends_nothing_then_wakes_with_the_preroll_and_the_first_word() -> None:
    intake = Intake("realtime", chunk_ms=20, history_seconds=20.0, preroll_ms=500)
    feed = intake.feed
    first = speech("u1-en")
    push_frames(intake, np.concatenate([silence(200), first, silence(1000)]))
    intake.rest()
    assert intake.resting and intake.rests == 1
    # 30 s of silence, longer than the history: nothing goes out, nothing counts as dropped.
    assert push_frames(intake, silence(30_000)) == []
    assert feed.dropped_samples == 0
    assert intake.rested_samples >= (30_000 - 500) * MS
    onset = feed.end
    second = speech("u2-en")
    resumed = b"".join(push_frames(intake, second))
    assert not intake.resting
    # The whole utterance from its first sample, after a pre-roll of the silence before it: 500 ms
    # before the push the sound was found in (one frame later when it straddles the gate's frames).
    heard = feed.sent_upto - onset
    assert heard >= len(second) - FRAME
    preroll = len(resumed) - 2 * heard
    assert resumed[preroll:] == second[:heard].tobytes()
    assert not any(resumed[:preroll])
    first_sound = int(np.argmax(frame_levels(second, FRAME) >= SILENCE_FLOOR_DBFS)) * FRAME
    assert 480 * MS <= preroll // 2 + first_sound <= 500 * MS + FRAME


def test_a_sound_below_the_speech_gate_still_wakes_the_lane() -> None:
    intake = Intake("translate", chunk_ms=40, history_seconds=20.0, preroll_ms=500)
    push_frames(intake, silence(3000))
    intake.rest()
    faint = speech("u3-de", gain_db=-30)  # below the -40.8 dBFS speech gate, above the floor
    sent = push_frames(intake, faint)
    assert not intake.resting and sent
    assert not intake.feed.voiced  # the speech gate did not hear it; the silence gate did


def test_a_new_link_wakes_a_resting_lane_and_hears_from_the_resume_point() -> None:
    intake = Intake("realtime", chunk_ms=20, history_seconds=20.0, preroll_ms=500)
    push_frames(intake, np.concatenate([speech("u1-en"), silence(3000)]))
    intake.rest()
    push_frames(intake, silence(2000))
    resume = intake.feed.end - 1000 * MS
    assert intake.switch(resume) == 500  # the 500 ms pre-roll kept, so 500 ms heard again
    assert not intake.resting and intake.next_chunk() is not None


# --- the server's audio clock across a rest ------------------------------------------------------
def test_the_timeline_maps_server_positions_across_skips() -> None:
    line = InputTimeline(origin=1000)
    line.sent(1000, 480)
    line.sent(1480, 480)  # contiguous
    line.sent(50_000, 480)  # the lane rested from 1960 to 50 000
    line.sent(50_480, 480)
    assert line.server_samples == 4 * 480
    assert line.to_input(0) == 1000
    assert line.to_input(959) == 1959
    assert line.to_input(960) == 50_000
    assert line.to_input(1500) == 50_540
    line.sent(90_000, 0)
    line.sent(99_000, 480)  # two skips with nothing sent between: one anchor
    assert line.to_input(1920) == 99_000


def test_a_speech_start_after_a_rest_lands_on_the_input_that_was_sent() -> None:
    engine = RealtimeEngine(EngineOptions())
    state = RealtimeLinkState()
    line = InputTimeline(origin=0)
    line.sent(0, 48_000)  # 2 s, then a rest of 60 s
    line.sent(60 * MODEL_RATE, 48_000)
    at = At(
        now=0.0,
        clock=lambda: 1.0,
        lane_id="a->b",
        serial=1,
        origin=0,
        feed=AudioFeed(),
        to_input=line.to_input,
    )
    event = parse_server_event(
        json.dumps(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": "e1",
                "audio_start_ms": 2300,
                "item_id": "item_1",
            }
        )
    )
    engine.on_server_event(state, event, at)
    assert state.speech_open == 60 * MODEL_RATE + 300 * MS
    assert not engine.input_settled(state, AudioFeed())


def test_a_heartbeat_with_nothing_open_marks_the_endpoint_idle() -> None:
    engine = TranslateEngine(EngineOptions())
    state = TranslateLinkState()
    feed = AudioFeed()
    feed.push(bytes(4000 * 2 * MS))
    feed.take(4000 * MS)
    at = At(now=0.0, clock=lambda: 1.0, lane_id="a->b", serial=1, origin=0, feed=feed)
    heartbeat = parse_translation_server_event(
        json.dumps(
            {
                "type": "session.output_audio.delta",
                "event_id": "e1",
                "delta": base64.b64encode(bytes(1920)).decode(),
            }
        )
    )
    engine.on_server_event(state, heartbeat, at)
    assert state.idle_heard_at == 4000 * MS
    assert engine.input_settled(state, feed)  # no sound at all: quiet since the start
