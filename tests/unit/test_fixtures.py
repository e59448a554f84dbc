"""The recorded speech fixtures are complete and in the format the audio path expects."""

from __future__ import annotations

import json
import shutil
import wave
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from translator_bot.fixtures import (
    ENV_VAR,
    FixtureError,
    RecordedUtterance,
    fixtures_dir,
    load_manifest,
    read_pcm,
    read_wav,
    translation_of,
    utterance,
)

LANGUAGES = {"en", "es", "de"}
GROUPS = {"u1", "u2", "u3", "u4"}
MAX_TOTAL_BYTES = 3 * 1024 * 1024


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def utterances() -> list[RecordedUtterance]:
    return load_manifest()


def test_every_group_has_all_three_languages(utterances: list[RecordedUtterance]) -> None:
    languages: dict[str, set[str]] = defaultdict(set)
    for u in utterances:
        assert u.id == f"{u.group}-{u.language}"
        languages[u.group].add(u.language)
    assert dict(languages) == {group: LANGUAGES for group in GROUPS}


def test_translations_point_at_the_same_sentence(utterances: list[RecordedUtterance]) -> None:
    by_id = {u.id: u for u in utterances}
    for u in utterances:
        assert set(u.translations) == LANGUAGES - {u.language}
        for language, target_id in u.translations.items():
            target = by_id[target_id]
            assert (target.group, target.language) == (u.group, language)
            assert translation_of(u, language) == target
        assert translation_of(u, u.language) == u
        assert translation_of(u, "fr") is None


def test_sentences_differ_from_each_other(utterances: list[RecordedUtterance]) -> None:
    texts = [u.text for u in utterances]
    assert len(set(texts)) == len(texts)
    assert all(u.text.strip() for u in utterances)


def test_files_are_24k_mono_s16_with_durations_matching_manifest(utterances: list[RecordedUtterance]) -> None:
    for u in utterances:
        with wave.open(str(u.path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2), u.id
        pcm = read_pcm(u)
        assert pcm.dtype == np.int16 and pcm.ndim == 1
        assert 2000 <= u.duration_ms <= 4000, u.id
        assert abs(len(pcm) * 1000 / 24_000 - u.duration_ms) <= 1, u.id
        # Normalised to about -3 dBFS: not silent, not clipped.
        peak = int(np.abs(pcm.astype(np.int32)).max())
        assert 0.6 * 32767 < peak < 0.8 * 32767, u.id


def test_48k_stereo_extra_matches_manifest() -> None:
    directory = fixtures_dir()
    extra = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))["extra"]
    assert [e["id"] for e in extra] == ["u1-en-48k-stereo"]
    entry = extra[0]
    samples, rate = read_wav(directory / entry["file"])
    assert (rate, samples.shape[1]) == (entry["sample_rate"], entry["channels"]) == (48_000, 2)
    source = read_pcm(utterance(entry["source"]))
    assert abs(len(samples) - 2 * len(source)) <= 2
    left = samples[:, 0].astype(np.float64)
    right = samples[:, 1].astype(np.float64)
    assert not np.array_equal(left, right)
    assert float(np.abs(right).max() / np.abs(left).max()) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(FixtureError, match="expected 24000 Hz mono"):
        read_pcm(directory / entry["file"])


def test_total_size_is_small() -> None:
    total = sum(p.stat().st_size for p in fixtures_dir().iterdir() if p.is_file())
    assert total < MAX_TOTAL_BYTES


def test_unknown_utterance_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="u1-en"):
        utterance("u9-xx")


def _copy_fixtures(tmp_path: Path) -> Path:
    target = tmp_path / "fixtures"
    shutil.copytree(fixtures_dir(), target)
    return target


def test_env_var_selects_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy_fixtures(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(copy))
    assert fixtures_dir() == copy
    assert utterance("u2-de").path == copy / "u2-de.wav"


def test_env_var_without_manifest_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        fixtures_dir()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.update(sample_rate=48_000), "sample_rate must be 24000"),
        (lambda m: m.update(utterances=[]), "non-empty list"),
        (lambda m: m["utterances"][0].pop("text"), "field 'text' must be of type str"),
        (lambda m: m["utterances"][0].update(duration_ms=True), "'duration_ms' must be of type int"),
        (lambda m: m["utterances"][0].update(file="../u1-en.wav"), "bare file name"),
        (lambda m: m["utterances"][0].update(file="nope.wav"), "missing file nope.wav"),
        (lambda m: m["utterances"][0]["translations"].update(es="u2-es"), "translation 'es'"),
        (lambda m: m["utterances"].append(m["utterances"][0]), "not unique"),
    ],
)
def test_bad_manifest_is_a_clear_error(tmp_path: Path, mutate, message: str) -> None:
    copy = _copy_fixtures(tmp_path)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    mutate(manifest)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(FixtureError, match=message):
        load_manifest(copy)


def test_manifest_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(FixtureError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_non_wav_file_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"definitely not audio")
    with pytest.raises(FixtureError, match="not a PCM WAV"):
        read_pcm(bogus)
