"""Sentence segmentation of the fake translate endpoint (`split_sentences`, a pure function)."""

from __future__ import annotations

import numpy as np
import pytest

from translator_bot.fake.sentences import Sentence, SentenceConfig, split_sentences
from translator_bot.fixtures import read_pcm, utterance

MS = 24  # samples per millisecond at 24 kHz


def tone(ms: int) -> np.ndarray:
    t = np.arange(ms * MS) / 24_000
    return (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * MS, np.int16)


def voiced_ms(sentences: tuple[Sentence, ...], offset: int = 0) -> list[tuple[int, int]]:
    return [((offset + s.voiced_start) // MS, (offset + s.voiced_end) // MS) for s in sentences]


def test_a_pause_of_300_ms_ends_a_sentence_and_a_shorter_one_does_not():
    pcm = np.concatenate([tone(500), silence(250), tone(500), silence(300), tone(400), silence(300)])
    split = split_sentences(pcm)
    assert voiced_ms(split.sentences) == [(0, 1250), (1550, 1950)]


def test_each_sentence_keeps_an_edge_of_audio_around_its_voiced_part():
    pcm = np.concatenate([silence(500), tone(400), silence(600)])
    (sentence,) = split_sentences(pcm).sentences
    assert (sentence.start // MS, sentence.voiced_start // MS) == (400, 500)
    assert (sentence.voiced_end // MS, sentence.end // MS) == (900, 1000)
    # at the very start of the audio the edge is cut short
    (first,) = split_sentences(np.concatenate([tone(400), silence(400)])).sentences
    assert first.start == 0


def test_a_sentence_still_being_spoken_is_kept_until_its_pause_or_the_end_of_input():
    pcm = np.concatenate([silence(700), tone(600), silence(200)])  # the pause is not long enough yet
    split = split_sentences(pcm)
    assert split.sentences == ()
    assert split.consumed == 600 * MS  # the silence before it goes, its 100 ms lead-in stays
    final = split_sentences(pcm, final=True)
    assert voiced_ms(final.sentences) == [(700, 1300)]


def test_silence_is_dropped_except_a_lead_in_for_the_next_sentence():
    split = split_sentences(silence(2000))
    assert (split.sentences, split.consumed) == ((), 1900 * MS)


def test_a_speaker_who_never_pauses_is_cut_at_the_longest_sentence():
    config = SentenceConfig(max_sentence_ms=2000)
    assert split_sentences(tone(1900), config).sentences == ()
    split = split_sentences(tone(2100), config)
    assert voiced_ms(split.sentences) == [(0, 2100)]
    assert split.consumed == 2100 * MS


def monologue(ids: list[str], pauses_ms: list[int]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The recordings with a pause before each but the first, and where each one lies (ms)."""
    pieces, spans, at = [], [], 0
    for index, uid in enumerate(ids):
        if index:
            pieces.append(silence(pauses_ms[index - 1]))
            at += pauses_ms[index - 1]
        pcm = read_pcm(utterance(uid))
        pieces.append(pcm)
        spans.append((at, at + len(pcm) // MS))
        at += len(pcm) // MS
    return np.concatenate([*pieces, silence(400)]), spans


@pytest.mark.parametrize("language", ["en", "es", "de"])
def test_recorded_sentences_with_short_pauses_are_found_one_by_one(language):
    ids = [f"u{n}-{language}" for n in (1, 2, 3, 4)]
    pcm, spans = monologue(ids, [300, 500, 400])
    found = voiced_ms(split_sentences(pcm).sentences)
    # One per recording (commas inside, up to 240 ms, do not split one), each inside its recording:
    # the recordings hold ~50 ms of quiet lead-in and tail, and a plosive is quiet for a while.
    assert len(found) == len(ids), found
    for (start, end), (rec_start, rec_end) in zip(found, spans, strict=True):
        assert rec_start <= start <= rec_start + 150 and rec_end - 160 <= end <= rec_end, (found, spans)


def test_streaming_in_appends_finds_the_same_sentences_as_reading_the_whole_audio():
    pcm, _ = monologue(["u1-en", "u3-en", "u2-en", "u4-en"], [350, 300, 450])
    whole = voiced_ms(split_sentences(pcm, final=True).sentences)
    kept, offset, streamed = np.zeros(0, np.int16), 0, []
    for start in range(0, len(pcm), 100 * MS):  # the client's 100 ms appends
        kept = np.concatenate([kept, pcm[start : start + 100 * MS]])
        split = split_sentences(kept)
        streamed += voiced_ms(split.sentences, offset)
        kept, offset = kept[split.consumed :], offset + split.consumed
        assert len(kept) <= (SentenceConfig().max_sentence_ms + 200) * MS  # bounded
    streamed += voiced_ms(split_sentences(kept, final=True).sentences, offset)
    assert streamed == whole and len(whole) == 4
