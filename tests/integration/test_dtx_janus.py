"""The bot's feeds with Opus DTX through a real Janus: Janus forwards the pauses and keep-alives,
its no-media timer does not take an idle feed for a dead one, and an aiortc listener hears the
speech after a pause complete and on time, as from a feed that sends every 20 ms."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from translator_bot.audio.playout import PlayoutKey, PlayoutTrack
from translator_bot.fixtures import read_pcm, utterance
from translator_bot.room import negotiation, videoroom
from translator_bot.room.janus import JanusSession, JsonObject
from translator_bot.room.peers import IceConfig, close_quietly, new_peer_connection
from translator_bot.testbed.janus import JanusServer
from translator_bot.testbed.participant import SimParticipant, best_envelope_match

pytestmark = [pytest.mark.janus, pytest.mark.timeout(120)]


def _media_off(messages: list[JsonObject]) -> list[JsonObject]:
    """Janus's notices that it stopped receiving a stream (no_media_timer, 1 s by default)."""
    return [m for m in messages if m.get("janus") == "media" and m.get("receiving") is False]


async def _idle_then_speech(janus: JanusServer, *, dtx: bool) -> dict[str, Any]:
    session = await JanusSession.connect(janus.url)
    messages: list[JsonObject] = []
    pc = new_peer_connection(IceConfig())
    listener = SimParticipant(janus.url, janus.room, f"Ana-{dtx}", "en", publish=False)
    track = PlayoutTrack(cushion_ms=60, dtx=dtx)
    try:
        handle = await session.attach(videoroom.PLUGIN, messages.append)
        joined = await videoroom.join_publisher(handle, janus.room, f"Interpreter dtx={dtx}")
        pc.addTransceiver(track, direction="sendonly")
        await negotiation.publish(handle, pc, display=f"Interpreter dtx={dtx}")
        await listener.join()
        await listener.wait_for_publisher(lambda pub: pub.id == joined.id, 15)
        listening = await listener.subscribe(joined.id)
        recorder = await listening.wait_track(15)
        await recorder.wait_first_frame(15)
        idle_from = track.packets_sent
        await asyncio.sleep(3.0)  # idle: longer than Janus's no-media timer
        idle_packets = track.packets_sent - idle_from
        idle_off = _media_off(messages)
        pcm = read_pcm(utterance("u1-en"))
        spoken_at: list[float] = []
        for n in range(2):  # two talkspurts with a pause of DTX between them
            spoken_at.append(time.monotonic())
            track.enqueue(pcm.astype("<i2").tobytes(), PlayoutKey("lane", f"u{n}"))
            track.end_item(PlayoutKey("lane", f"u{n}"))
            await asyncio.sleep(pcm.size / 24_000 + 2.5)
        rec = recorder.recording
        heard = rec.samples()
        first_loud = rec.first_loud_arrival()
        # Where each talkspurt starts on the recording's timeline: the recording plays a pause out by
        # the timestamps, so the distance between them is the time between them at the sender.
        loud = np.flatnonzero(np.abs(heard) > 500)
        onsets = [int(loud[0])] if loud.size else []
        later = loud[loud > onsets[0] + pcm.size * 2 + 48_000] if onsets else loud[:0]
        onsets += [int(later[0])] if later.size else []
        result = {
            "idle_off": idle_off,
            "match": best_envelope_match(heard, pcm),
            "latency": None if first_loud is None else first_loud - spoken_at[0],
            "spoken_apart": spoken_at[1] - spoken_at[0],
            "heard_apart": (onsets[1] - onsets[0]) / 48_000 if len(onsets) == 2 else None,
            "frames": rec.frames,
            "paused": rec.paused_frames,
            "packets": track.packets_sent,
            "idle_packets": idle_packets,
            "dtx_frames": track.encoder.dtx_frames,
        }
        # The control: a feed that really stops (the sender ends) is reported by Janus, so the
        # idle check above can fail.
        track.stop()
        async with asyncio.timeout(10):
            while not _media_off(messages):  # noqa: ASYNC110 - Janus's event lands in the list
                await asyncio.sleep(0.1)
        return result
    finally:
        track.stop()
        await listener.close()
        await close_quietly(pc)
        await session.destroy()


async def test_an_idle_dtx_feed_stays_alive_at_janus_and_its_speech_is_heard_on_time(
    janus: JanusServer,
) -> None:
    dtx = await _idle_then_speech(janus, dtx=True)
    continuous = await _idle_then_speech(janus, dtx=False)
    print(f"dtx: {dtx}\ncontinuous: {continuous}")
    assert dtx["idle_off"] == [] and continuous["idle_off"] == [], (dtx, continuous)
    # DTX really held packets back while idle, and the listener played the pauses out.
    # Counted over the idle 3 s (150 slots; with DTX what is left of the hangover, then a keep-alive
    # per 400 ms): the whole runs' counts also hold the speech, which both send alike, and the time
    # the listener took to subscribe, which varies (a listener that subscribed after the hangover
    # waits for 5 keep-alives before its first frame: the bot welcomes it, PlayoutTrack.welcome).
    assert dtx["dtx_frames"] >= 5 and dtx["idle_packets"] <= 20, dtx
    assert continuous["idle_packets"] >= 140, continuous
    assert dtx["paused"] > 100 and continuous["paused"] == 0, (dtx, continuous)
    # The same speech, heard as well and as soon as without DTX.
    assert dtx["match"] > 0.9 and continuous["match"] > 0.9, (dtx["match"], continuous["match"])
    assert dtx["latency"] is not None and continuous["latency"] is not None
    assert dtx["latency"] < continuous["latency"] + 0.06, (dtx["latency"], continuous["latency"])
    # The second talkspurt is as far from the first on the listener's timeline as it was spoken
    # after it (each goes out at its next 20 ms slot): the pause between them played out in full.
    for run in (dtx, continuous):
        assert run["heard_apart"] == pytest.approx(run["spoken_apart"], abs=0.025), run
