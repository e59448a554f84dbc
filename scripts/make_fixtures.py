"""Synthesise the recorded speech fixtures in translator_bot/recordings with espeak-ng.

Four sentences (u1..u4), each spoken in English, Spanish and German, so a test can send one language
and check the other two. Every file is 24 kHz mono s16 (what the translation endpoint takes and returns),
trimmed to ~50 ms of silence at each end and normalised to -3 dBFS peak. One extra 48 kHz stereo copy of
u1-en (what a WebRTC peer sends) exercises the inbound resampler.

Resampling uses soxr (VHQ) in-process rather than the sox binary, so the output depends only on the
espeak-ng voice data and this file: running it twice gives byte-identical files.

Run: .venv/bin/python scripts/make_fixtures.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

OUT_DIR = Path(__file__).resolve().parent.parent / "translator_bot" / "recordings"
RATE = 24_000
STEREO_RATE = 48_000
PEAK_DBFS = -3.0
PAD_S = 0.05
# A sample counts as speech once it reaches this level relative to the utterance peak; espeak-ng's
# silence is digital zero, so anything above the dither-free floor works, -50 dB keeps soft consonants.
SPEECH_THRESHOLD_DB = -50.0
RIGHT_GAIN = 0.8
LANGUAGES = ("en", "es", "de")
# espeak-ng voice per language; default speed (175 wpm) keeps every sentence within 2-4 s.
VOICES = {"en": "en-us", "es": "es", "de": "de"}
SPEED_WPM = 175


@dataclass(frozen=True)
class Sentence:
    group: str
    texts: dict[str, str]


SENTENCES = (
    Sentence(
        "u1",
        {
            "en": "Good morning, thank you all for joining today.",
            "es": "Buenos días, gracias a todos por acompañarnos hoy.",
            "de": "Guten Morgen, vielen Dank, dass Sie heute alle dabei sind.",
        },
    ),
    Sentence(
        "u2",
        {
            "en": "Excuse me, where is the nearest train station?",
            "es": "Perdone, ¿dónde está la estación de tren más cercana?",
            "de": "Entschuldigung, wo ist der nächste Bahnhof?",
        },
    ),
    Sentence(
        "u3",
        {
            "en": "The meeting starts today at three o'clock.",
            "es": "La reunión empieza hoy a las tres en punto.",
            "de": "Die Besprechung beginnt heute um drei Uhr.",
        },
    ),
    Sentence(
        "u4",
        {
            "en": "Please send me the report before Friday afternoon.",
            "es": "Por favor, envíeme el informe antes del viernes por la tarde.",
            "de": "Bitte schicken Sie mir den Bericht vor Freitagnachmittag.",
        },
    ),
)


def synthesise(text: str, language: str, workdir: Path) -> tuple[npt.NDArray[np.float64], int]:
    """Speak text with espeak-ng; return float samples in [-1, 1] and espeak's native rate."""
    # espeak-ng's --stdout WAV header carries a placeholder length, so write a real file instead.
    target = workdir / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", VOICES[language], "-s", str(SPEED_WPM), "-w", str(target), text],
        check=True,
        capture_output=True,
    )
    with wave.open(str(target), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise RuntimeError(f"espeak-ng produced an unexpected format for {language!r}")
        rate = wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0, rate


def trim(samples: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    level = np.abs(samples)
    loud = np.flatnonzero(level >= level.max() * 10 ** (SPEECH_THRESHOLD_DB / 20))
    pad = round(PAD_S * rate)
    first, last = int(loud[0]), int(loud[-1])
    start = max(first - pad, 0)
    stop = min(last + 1 + pad, len(samples))
    # espeak-ng sometimes starts speaking on the first sample: top up with digital silence so every
    # recording has the same lead-in and tail.
    return np.pad(samples[start:stop], (pad - (first - start), pad - (stop - 1 - last)))


def to_int16(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    gain = 10 ** (PEAK_DBFS / 20) * 32767 / float(np.abs(samples).max())
    rounded: npt.NDArray[np.float64] = np.clip(np.round(samples * gain), -32768, 32767)
    return rounded.astype(np.int16)


def write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int) -> None:
    frames = samples if samples.ndim == 2 else samples[:, np.newaxis]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.ascontiguousarray(frames, dtype="<i2").tobytes())


def make_utterance(text: str, language: str, workdir: Path) -> npt.NDArray[np.int16]:
    speech, native_rate = synthesise(text, language, workdir)
    # Resample before trimming and normalising so the peak and padding are measured at the output rate.
    resampled = np.asarray(soxr.resample(speech, native_rate, RATE, quality="VHQ"), dtype=np.float64)
    return to_int16(trim(resampled, RATE))


def make_stereo(mono: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """48 kHz stereo copy of a 24 kHz mono utterance, right channel quieter so a downmix is testable."""
    up = np.asarray(soxr.resample(mono.astype(np.float64) / 32768.0, RATE, STEREO_RATE, quality="VHQ"))
    left = np.clip(np.round(up * 32768.0), -32768, 32767)
    right = np.round(left * RIGHT_GAIN)
    return np.stack([left, right], axis=1).astype(np.int16)


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    utterances: list[dict[str, object]] = []
    extra: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for sentence in SENTENCES:
            for language in LANGUAGES:
                uid = f"{sentence.group}-{language}"
                pcm = make_utterance(sentence.texts[language], language, Path(tmp))
                write_wav(OUT_DIR / f"{uid}.wav", pcm, RATE)
                utterances.append(
                    {
                        "id": uid,
                        "group": sentence.group,
                        "language": language,
                        "text": sentence.texts[language],
                        "file": f"{uid}.wav",
                        "duration_ms": round(len(pcm) * 1000 / RATE),
                        "translations": {
                            other: f"{sentence.group}-{other}" for other in LANGUAGES if other != language
                        },
                    }
                )
                if uid == "u1-en":
                    stereo_id = "u1-en-48k-stereo"
                    write_wav(OUT_DIR / f"{stereo_id}.wav", make_stereo(pcm), STEREO_RATE)
                    extra.append(
                        {
                            "id": stereo_id,
                            "file": f"{stereo_id}.wav",
                            "sample_rate": STEREO_RATE,
                            "channels": 2,
                            "source": uid,
                        }
                    )
    manifest = {"sample_rate": RATE, "utterances": utterances, "extra": extra}
    (OUT_DIR / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for item in utterances:
        print(f"{item['file']:<24} {item['duration_ms']:>5} ms  {item['text']}")
    total = sum(p.stat().st_size for p in OUT_DIR.iterdir() if p.is_file())
    print(f"total {total} bytes in {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
