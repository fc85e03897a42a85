"""Tracks in an HLS or DASH ladder: alternate audio renditions, WebVTT subtitle renditions, adaptation sets.

For a source with several audio tracks or with subtitles, the video variants carry no audio: each kept
audio track is encoded once as its own rendition (HLS `EXT-X-MEDIA:TYPE=AUDIO` in one group that every
variant names; DASH one adaptation set per language), so a ladder of four rungs and two languages
encodes two audio streams, not eight. Text subtitles become segmented WebVTT renditions (HLS
`TYPE=SUBTITLES`, see webvtt.py); DASH outputs carry none (noted). A plain source never gets here.

ffmpeg's HLS muxer names audio renditions "audio_<n>" and writes no AUTOSELECT; `finish_hls` rewrites
those lines with a readable NAME (the track's title, else its language code) and AUTOSELECT=YES, and
adds the subtitle renditions to the master playlist once they are cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mediaflow.media.outputs.plan import OutputError, Source, Step
from mediaflow.media.outputs.track_map import TrackChoice
from mediaflow.media.outputs.webvtt import PLAYLIST_NAME, segment_lengths, write_segmented
from mediaflow.media.tracks import AudioTrack, SubtitleTrack

AUDIO_GROUP = "audio"  # ffmpeg writes it as GROUP-ID="group_audio"
SUBTITLE_GROUP = "subtitles"
_UNQUOTABLE = re.compile(r'["\x00-\x1f\x7f]')


def rendition_folder(kind: str, position: int, track: AudioTrack | SubtitleTrack) -> str:
    """`audio_1_eng`, `subtitles_1_fra`: unique (the position) and telling (the language); safe as a path
    and inside -var_stream_map, which splits on spaces and commas (a language code has neither)."""
    return f"{kind}_{position + 1}_{track.language}"


def display_name(track: AudioTrack | SubtitleTrack) -> str:
    """The NAME a player shows: the track's title when it has one, else its language code. Titles come from
    the uploaded file: quotes and control characters would break the playlist's quoted string."""
    title = _UNQUOTABLE.sub("", track.title or "").strip()
    return title or track.language


def display_names(tracks: Sequence[AudioTrack] | Sequence[SubtitleTrack]) -> list[str]:
    """One NAME per rendition, unique in its group as HLS requires: a repeated one gets " 2", " 3"."""
    names: list[str] = []
    for track in tracks:
        name, n = display_name(track), 1
        while (name if n == 1 else f"{name} {n}") in names:
            n += 1
        names.append(name if n == 1 else f"{name} {n}")
    return names


def audio_maps(choice: TrackChoice) -> list[str]:
    return [arg for track in choice.audio for arg in ("-map", f"0:a:{track.index}")]


def hls_var_stream_map(labels: list[str], choice: TrackChoice) -> str:
    """Video variants naming the audio group, then one entry per audio rendition."""
    group = f"agroup:{AUDIO_GROUP}" if choice.audio else ""
    variants = [",".join(filter(None, (f"v:{i}", group, f"name:{label}"))) for i, label in enumerate(labels)]
    renditions = [
        f"a:{i},agroup:{AUDIO_GROUP},language:{track.language},name:{rendition_folder('audio', i, track)}"
        + (",default:yes" if i == choice.default_audio else "")
        for i, track in enumerate(choice.audio)
    ]
    return " ".join([*variants, *renditions])


def dash_adaptation_sets(rung_count: int, choice: TrackChoice) -> str:
    """All video representations in one set; each audio track its own set (one language per set)."""
    sets = ["id=0,streams=v"]
    sets += [f"id={i + 1},streams={rung_count + i}" for i in range(len(choice.audio))]
    return " ".join(sets)


def subtitle_steps(
    choice: TrackChoice, source: Source, start: float, duration: float | None, out_dir: Path
) -> list[Step]:
    """One ffmpeg run per kept text track: the whole track as one WebVTT file (`subtitles_1_eng.vtt`, also a
    handy side file for players that take one), cut into segments by `finish_hls`."""
    steps = []
    for i, sub in enumerate(choice.subtitles):
        target = out_dir / f"{rendition_folder('subtitles', i, sub)}.vtt"
        argv = [
            *source.head(start, duration),
            "-map",
            f"0:s:{sub.index}",
            "-c:s",
            "webvtt",
            *source.tail("webvtt", target),
        ]
        steps.append(Step(f"subtitles{i + 1}", argv, None))
    return steps


def finish_hls(choice: TrackChoice, out_dir: Path, master_name: str, variant: str) -> None:
    """Cut the subtitle files into segments lined up with the `variant` folder's video segments, and write
    the renditions' lines into the master playlist."""
    master = out_dir / master_name
    lines = master.read_text(encoding="utf-8").splitlines()
    subtitle_lines = []
    if choice.subtitles:
        playlist = (out_dir / variant / PLAYLIST_NAME).read_text(encoding="utf-8")
        lengths = segment_lengths(playlist)
        first = next((line for line in playlist.splitlines() if line and not line.startswith("#")), None)
        if not lengths or first is None:
            raise OutputError("the HLS muxer wrote a variant playlist without segments")
        origin = mpegts_origin(out_dir / variant / first)
        for i, (sub, name) in enumerate(zip(choice.subtitles, display_names(choice.subtitles), strict=True)):
            folder = rendition_folder("subtitles", i, sub)
            write_segmented(out_dir / f"{folder}.vtt", out_dir / folder, lengths, origin)
            default = "YES" if i == choice.default_subtitle else "NO"
            subtitle_lines.append(
                f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",NAME="{name}",'
                f'DEFAULT={default},AUTOSELECT=YES,FORCED={"YES" if sub.forced else "NO"},LANGUAGE="{sub.language}",'
                f'URI="{folder}/{PLAYLIST_NAME}"'
            )
    rewritten: list[str] = []
    audio_seen, inserted = 0, False
    audio_names = display_names(choice.audio)
    for line in lines:
        if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO"):
            if audio_seen >= len(choice.audio):
                raise OutputError(f"the HLS muxer wrote more audio renditions than the {len(choice.audio)} asked for")
            line = _with_name(line, audio_names[audio_seen])
            audio_seen += 1
            if "AUTOSELECT=" not in line:
                line = re.sub(r"(DEFAULT=(?:YES|NO))", r"\1,AUTOSELECT=YES", line, count=1)
        elif line.startswith("#EXT-X-STREAM-INF") and choice.subtitles:
            if not inserted:  # the renditions come before the first variant that names their group
                rewritten += subtitle_lines
                inserted = True
            line = f'{line},SUBTITLES="{SUBTITLE_GROUP}"'
        rewritten.append(line)
    if audio_seen != len(choice.audio):
        raise OutputError(f"the HLS muxer wrote {audio_seen} audio renditions instead of {len(choice.audio)}")
    master.write_text("\n".join(rewritten) + "\n", encoding="utf-8")


def _with_name(line: str, name: str) -> str:
    """The line with its NAME attribute set to `name` (spliced in, not re.sub: a title may hold "\\1")."""
    found = re.search(r'NAME="[^"]*"', line)
    return line if found is None else f'{line[: found.start()]}NAME="{name}"{line[found.end() :]}'


def mpegts_origin(segment: Path) -> int:
    """The MPEG-TS time (90 kHz) of the programme's start: the first video frame of the first segment."""
    import av  # only HLS outputs with subtitles need it

    try:
        with av.open(str(segment)) as container:
            video = container.streams.video[0]
            if video.start_time is None or video.time_base is None:
                raise OutputError("the first HLS segment has no video start time to align the subtitles with")
            return int(video.start_time * video.time_base * 90_000)
    except (av.error.FFmpegError, IndexError) as exc:
        raise OutputError(f"cannot read the first HLS segment to align the subtitles ({exc})") from exc
