"""Recorded speech fixtures: the same four sentences spoken in English, Spanish and German.

Tests, benchmarks and the fake model server feed these recordings in place of a live participant and
use the translation links to know which recording "should" come back. The recordings and
`manifest.json` are made by `scripts/make_fixtures.py`.
"""

from __future__ import annotations

import json
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from translator_bot.audio.formats import MODEL_RATE

ENV_VAR = "TRANSLATOR_FIXTURES_DIR"
MANIFEST = "manifest.json"


class FixtureError(ValueError):
    """The fixture manifest or a fixture recording is missing, malformed or in the wrong format."""


@dataclass(frozen=True)
class RecordedUtterance:
    """One recorded sentence of the test fixtures (what a transcript records is interpreter.transcript's
    Utterance)."""

    id: str  # e.g. "u1-en"
    group: str  # the sentence, shared by its translations, e.g. "u1"
    language: str  # base language subtag, e.g. "en"
    text: str
    path: Path
    duration_ms: int
    translations: dict[str, str]  # language base -> utterance id of the same sentence in it


def fixtures_dir() -> Path:
    """The fixture directory: $TRANSLATOR_FIXTURES_DIR, else the recordings shipped in the package."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        directory = Path(configured)
        if not (directory / MANIFEST).is_file():
            raise FileNotFoundError(f"{ENV_VAR}={configured!r} has no {MANIFEST}")
        return directory
    bundled = Path(__file__).resolve().parent / "recordings"
    if (bundled / MANIFEST).is_file():
        return bundled
    raise FileNotFoundError(
        f"speech fixtures not found at {bundled}; set {ENV_VAR} to a directory holding {MANIFEST}"
    )


def _field(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = entry.get(key)
    # bool is an int subclass; a duration of `true` is garbage, not 1 ms.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FixtureError(f"{where}: field {key!r} must be of type {kind.__name__}, got {value!r}")
    return value


def _parse_utterance(entry: Any, index: int, directory: Path) -> RecordedUtterance:
    where = f"{directory / MANIFEST}: utterances[{index}]"
    if not isinstance(entry, dict):
        raise FixtureError(f"{where} must be an object")
    translations = _field(entry, "translations", dict, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in translations.items()):
        raise FixtureError(f"{where}: 'translations' must map language to utterance id (strings)")
    duration_ms = _field(entry, "duration_ms", int, where)
    if duration_ms <= 0:
        raise FixtureError(f"{where}: 'duration_ms' must be positive, got {duration_ms}")
    file_name = _field(entry, "file", str, where)
    if Path(file_name).name != file_name:
        raise FixtureError(f"{where}: 'file' must be a bare file name, got {file_name!r}")
    return RecordedUtterance(
        id=_field(entry, "id", str, where),
        group=_field(entry, "group", str, where),
        language=_field(entry, "language", str, where),
        text=_field(entry, "text", str, where),
        path=directory / file_name,
        duration_ms=duration_ms,
        translations=dict(translations),
    )


def load_manifest(directory: Path | None = None) -> list[RecordedUtterance]:
    """Read and check manifest.json; every referenced file and translation id must exist."""
    directory = fixtures_dir() if directory is None else Path(directory)
    manifest_path = directory / MANIFEST
    try:
        document = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no fixture manifest at {manifest_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FixtureError(f"{manifest_path} must hold a JSON object")
    if document.get("sample_rate") != MODEL_RATE:
        raise FixtureError(
            f"{manifest_path}: sample_rate must be {MODEL_RATE}, got {document.get('sample_rate')!r}"
        )
    entries = document.get("utterances")
    if not isinstance(entries, list) or not entries:
        raise FixtureError(f"{manifest_path}: 'utterances' must be a non-empty list")
    utterances = [_parse_utterance(entry, i, directory) for i, entry in enumerate(entries)]
    by_id = {u.id: u for u in utterances}
    if len(by_id) != len(utterances):
        raise FixtureError(f"{manifest_path}: utterance ids are not unique")
    for u in utterances:
        if not u.path.is_file():
            raise FixtureError(f"{manifest_path}: {u.id} names missing file {u.path.name}")
        for language, target_id in u.translations.items():
            target = by_id.get(target_id)
            if target is None or target.language != language or target.group != u.group:
                raise FixtureError(
                    f"{manifest_path}: {u.id} translation {language!r} -> {target_id!r} is not an "
                    f"utterance of group {u.group!r} in that language"
                )
    return utterances


def utterance(utterance_id: str, directory: Path | None = None) -> RecordedUtterance:
    """The utterance with this id (e.g. "u2-es"); KeyError naming the known ids if there is none."""
    utterances = load_manifest(directory)
    for u in utterances:
        if u.id == utterance_id:
            return u
    raise KeyError(f"no fixture utterance {utterance_id!r}; known: {', '.join(u.id for u in utterances)}")


def translation_of(utt: RecordedUtterance, language_base: str) -> RecordedUtterance | None:
    """The same sentence recorded in another language (itself for its own language), or None."""
    if language_base == utt.language:
        return utt
    target_id = utt.translations.get(language_base)
    if target_id is None:
        return None
    return utterance(target_id, utt.path.parent)


def read_wav(path: Path | str) -> tuple[npt.NDArray[np.int16], int]:
    """Samples of a 16-bit PCM WAV shaped (samples, channels), and its sample rate."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise FixtureError(f"{path} is not a PCM WAV file: {exc}") from None
    if width != 2:
        raise FixtureError(f"{path} has {8 * width}-bit samples; only signed 16-bit is supported")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    return samples.reshape(-1, channels), rate


def read_pcm(source: RecordedUtterance | Path | str) -> npt.NDArray[np.int16]:
    """1-D int16 samples of a 24 kHz mono s16 recording (a RecordedUtterance or a WAV path)."""
    path = source.path if isinstance(source, RecordedUtterance) else Path(source)
    samples, rate = read_wav(path)
    if rate != MODEL_RATE or samples.shape[1] != 1:
        raise FixtureError(
            f"{path} is {rate} Hz with {samples.shape[1]} channel(s); expected {MODEL_RATE} Hz mono s16"
        )
    return samples[:, 0].copy()
