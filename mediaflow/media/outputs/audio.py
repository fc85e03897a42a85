"""Audio: encoder arguments, two-pass EBU R128 loudness normalisation, and `type: audio` outputs.

Loudness is two-pass because one-pass loudnorm can only guess the programme's loudness as it goes
(dynamic mode, audibly pumping). The first pass measures the source (`print_format=json`), the second
applies one linear gain computed from that measurement, so the result lands on the target.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from mediaflow.media.outputs.params import AudioSettings, Clip
from mediaflow.media.outputs.plan import OutputPlan, Source, Step, clip_range, media_seconds, number
from mediaflow.media.outputs.spec import AUDIO_FORMAT_CODECS, AudioOutput

ENCODERS = {"aac": "aac", "opus": "libopus", "mp3": "libmp3lame", "flac": "flac", "pcm": "pcm_s16le"}
DEFAULT_BITRATES = {"aac": "128k", "opus": "128k", "mp3": "192k"}
AUDIO_MUXERS = {"mp3": "mp3", "m4a": "ipod", "opus": "opus", "flac": "flac", "wav": "wav"}
LOUDNORM_LRA = 11.0  # EBU R128's usual loudness range target; raised to the source's own (see below)


@dataclass(frozen=True)
class Loudness:
    """What the first loudnorm pass measured in the source (the `input_*` values of its JSON)."""

    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    target_offset: float


@dataclass(frozen=True)
class LoudnessKey:
    """One measurement serves every output with the same part of the source and the same target."""

    start: float
    duration: float | None
    target: float
    true_peak: float


def loudness_key(audio: AudioSettings, clip: Clip | None, source: Source) -> LoudnessKey | None:
    if audio.loudness is None or source.info.audio is None:
        return None  # no target, or nothing to normalise (a video output drops absent audio quietly)
    start, duration = clip_range(clip, source)
    return LoudnessKey(start, duration, audio.loudness, audio.true_peak)


def measure_step(key: LoudnessKey, source: Source) -> Step:
    graph = f"loudnorm=I={number(key.target)}:TP={number(key.true_peak)}:LRA={number(LOUDNORM_LRA)}:print_format=json"
    track = f"0:a:{source.info.tracks.main_audio}"  # 0:a:0 unless another track is flagged default
    argv = [*source.head(key.start, key.duration), "-map", track, "-vn", "-af", graph, "-f", "null", "-"]
    return Step("loudness", argv, media_seconds(key.start, key.duration, source))


_JSON_BLOCK = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.DOTALL)


def parse_loudness(log: str) -> Loudness | None:
    """The measurement from the first pass's stderr; None when there is none (or only silence)."""
    blocks = _JSON_BLOCK.findall(log)
    if not blocks:
        return None
    data = json.loads(blocks[-1])
    try:
        values = {
            key: float(data[key]) for key in ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
        }
    except (KeyError, ValueError):
        return None
    if not all(math.isfinite(v) for v in values.values()):  # silence measures -inf: no gain can fix that
        return None
    return Loudness(**values)


def loudnorm_filter(audio: AudioSettings, measured: Loudness, sample_rate: int) -> str:
    # linear=true applies one gain; loudnorm silently falls back to dynamic mode if the source's range
    # is wider than the target range, so the target range is at least the measured one.
    lra = min(50.0, max(LOUDNORM_LRA, math.ceil(measured.input_lra)))
    return (
        f"loudnorm=I={number(audio.loudness or 0)}:TP={number(audio.true_peak)}:LRA={number(lra)}"
        f":measured_I={number(measured.input_i)}:measured_TP={number(measured.input_tp)}"
        f":measured_LRA={number(measured.input_lra)}:measured_thresh={number(measured.input_thresh)}"
        f":offset={number(measured.target_offset)}:linear=true:print_format=summary"
        f",aresample={sample_rate}"  # loudnorm works (and outputs) at 192 kHz
    )


def audio_args(audio: AudioSettings, codec: str, source: Source, measured: Loudness | None) -> list[str]:
    """`[-af loudnorm] -c:a ENC [-b:a B] [-ac N] [-ar R]` (the seed's presets are `-c:a ENC -b:a B`)."""
    args: list[str] = []
    if measured is not None:
        rate = audio.sample_rate or _natural_rate(codec, source)
        args += ["-af", loudnorm_filter(audio, measured, rate)]
    args += ["-c:a", ENCODERS[codec]]
    if codec in DEFAULT_BITRATES:
        args += ["-b:a", audio.bitrate or DEFAULT_BITRATES[codec]]
    if audio.channels is not None:
        args += ["-ac", str(audio.channels)]
    if audio.sample_rate is not None:
        args += ["-ar", str(audio.sample_rate)]
    return args


def _natural_rate(codec: str, source: Source) -> int:
    if codec == "opus":
        return 48000  # the only full-band rate Opus has
    rate = source.info.audio.sample_rate if source.info.audio else None
    return rate if rate in (44100, 48000, 32000, 22050, 24000, 16000, 8000, 96000) else 48000


def audio_plan(output: AudioOutput, source: Source, out_dir: Path, measured: Loudness | None) -> OutputPlan:
    source.need_audio(f"audio output {output.name!r}")
    codec = AUDIO_FORMAT_CODECS[output.format]
    start, duration = clip_range(output.clip, source)
    target = out_dir / f"{output.name}.{output.format}"
    tracks = source.info.tracks
    argv = [
        *source.head(start, duration),
        "-map",
        f"0:a:{tracks.main_audio}",
        "-vn",
        *audio_args(output.audio, codec, source, measured),
        *source.tail(AUDIO_MUXERS[output.format], target),
    ]
    notes = []
    if len(tracks.audio) > 1:  # an audio file holds one track: the one a player would pick
        chosen = tracks.audio[tracks.main_audio]
        notes.append(
            f"the {chosen.language} audio track used (the default of {len(tracks.audio)}: "
            f"{', '.join(t.language for t in tracks.audio)})"
        )
    seconds = media_seconds(start, duration, source)
    return OutputPlan(steps=[Step("encode", argv, seconds)], weight=0.03 * (seconds or 60), notes=notes)
