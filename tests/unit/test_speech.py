import numpy as np

from translator_bot.interpreter.speech import SpeechEndTracker


def tone(ms: int, amplitude: float = 0.3) -> bytes:
    t = np.arange(ms * 24) / 24_000
    return (np.sin(2 * np.pi * 220 * t) * amplitude * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return bytes(ms * 48)


def test_speech_end_is_the_last_voiced_frame_not_the_detection_time():
    tracker = SpeechEndTracker(hangover_ms=200)
    now = 0.0
    for chunk in [silence(100), tone(1000), silence(100)]:
        now += len(chunk) / 48_000
        tracker.feed(chunk, now)
    assert tracker.speaking and tracker.last_speech_end is None  # still within the hangover
    now += 0.2
    tracker.feed(silence(200), now)
    assert not tracker.speaking
    assert tracker.last_speech_end is not None
    assert abs(tracker.last_speech_end - 1.1) < 0.021


def test_odd_sized_chunks_and_quiet_noise():
    tracker = SpeechEndTracker()
    data = tone(500) + silence(400)
    now = 0.0
    for start in range(0, len(data), 333):  # odd sizes split samples and frames
        chunk = data[start : start + 333]
        now += len(chunk) / 48_000
        tracker.feed(chunk, now)
    assert tracker.last_speech_end is not None and abs(tracker.last_speech_end - 0.5) < 0.03
    quiet = SpeechEndTracker()
    quiet.feed(tone(500, amplitude=0.001), 0.5)
    assert not quiet.speaking


def test_chunks_read_in_place_and_carried_bytes_give_the_same_speech_end():
    # The usual 20 ms chunk is read in place; a chunk that splits a sample goes through the carry.
    data = silence(100) + tone(700) + silence(400)
    in_place, carried = SpeechEndTracker(), SpeechEndTracker()
    now = 0.0
    for start in range(0, len(data), 960):
        chunk = data[start : start + 960]
        now += len(chunk) / 48_000
        in_place.feed(chunk, now)
    carried.feed(data[:1], 1 / 48_000)
    now = 1 / 48_000
    for start in range(1, len(data), 960):
        chunk = data[start : start + 960]
        now += len(chunk) / 48_000
        carried.feed(chunk, now)
    assert in_place.last_speech_end is not None and carried.last_speech_end is not None
    assert abs(in_place.last_speech_end - 0.8) < 0.021
    assert abs(carried.last_speech_end - in_place.last_speech_end) < 1e-3
    assert not in_place.speaking and not carried.speaking


def test_a_view_from_any_chunk_says_what_a_tracker_started_there_would():
    # A lane opened at any moment (mid-speech, in a pause, in the hangover) shares its speaker's
    # tracker: at every later chunk the view must equal the lane's own tracker fed from that chunk.
    pattern = [silence(60), tone(300), silence(100), tone(200), silence(300), tone(80), silence(500)]
    data = b"".join(pattern) * 2
    chunks = [data[start : start + 960] for start in range(0, len(data), 960)]
    times = [(i + 1) * 0.02 for i in range(len(chunks))]
    for opened in range(len(chunks)):
        shared = SpeechEndTracker()
        for chunk, now in zip(chunks[:opened], times[:opened], strict=True):
            shared.feed(chunk, now)
        view, own = shared.since_now(), SpeechEndTracker()
        for chunk, now in zip(chunks[opened:], times[opened:], strict=True):
            shared.feed(chunk, now)
            own.feed(chunk, now)
            assert (view.last_speech_end, view.speaking) == (own.last_speech_end, own.speaking), opened
