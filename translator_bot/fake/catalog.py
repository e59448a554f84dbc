"""The fixture recordings the fake understands and answers with, loaded once per directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from translator_bot.fake.recognizer import FixtureRecognizer, Recognition
from translator_bot.fixtures import RecordedUtterance, fixtures_dir, load_manifest, read_pcm


class FixtureCatalog:
    def __init__(self, utterances: list[RecordedUtterance]) -> None:
        self._utterances = {u.id: u for u in utterances}
        self._pcm = {u.id: read_pcm(u) for u in utterances}
        self._recognizer = FixtureRecognizer(self._pcm)

    @property
    def recognizer(self) -> FixtureRecognizer:
        return self._recognizer

    def utterance(self, utterance_id: str) -> RecordedUtterance:
        return self._utterances[utterance_id]

    def pcm(self, utterance_id: str) -> npt.NDArray[np.int16]:
        return self._pcm[utterance_id]

    def recognise(self, pcm: npt.NDArray[np.int16]) -> Recognition:
        """Which fixture is this (CPU-bound, tens of ms: call it from a worker thread)."""
        return self._recognizer.recognise(pcm)

    def reply(self, heard_id: str, target_base: str) -> RecordedUtterance | None:
        """The same sentence recorded in the target language (itself if already in it), or None."""
        heard = self._utterances[heard_id]
        reply_id = heard.id if target_base == heard.language else heard.translations.get(target_base)
        return self._utterances.get(reply_id) if reply_id is not None else None


@lru_cache(maxsize=4)
def _load(directory: Path) -> FixtureCatalog:
    return FixtureCatalog(load_manifest(directory))


def load_catalog(directory: Path | None = None) -> FixtureCatalog:
    """The catalog of `directory` (default: the fixtures directory), built once per process."""
    return _load((directory or fixtures_dir()).resolve())
