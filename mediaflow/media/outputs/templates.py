"""Built-in, read-only templates: named lists of outputs a job can ask for with `"template": NAME`.

The seed's five methods are templates too: POST /process makes a one-output job from its method's
template, so a method's ffmpeg command is made by the same builders as every other output. Their argv
is pinned, for every method and format, by golden tests (`method_argv`). `web` and `hls` are the two
things most people want from a video service.
"""

from __future__ import annotations

from pathlib import Path

from mediaflow.jobs.model import Method
from mediaflow.media.errors import InvalidFormatError
from mediaflow.media.outputs.executor import plan_output
from mediaflow.media.outputs.plan import Source
from mediaflow.media.outputs.spec import OutputSpec, parse_outputs

_CRF = {Method.COMPRESS: 28, Method.RESIZE: 23, Method.BLACK_AND_WHITE: 23}
_VP9_CRF = {Method.COMPRESS: 36, Method.RESIZE: 31, Method.BLACK_AND_WHITE: 31, Method.CONVERT_FORMAT: 31}


_VIDEO_FORMATS = ("mp4", "mov", "mkv", "webm")
_AUDIO_FORMATS = ("mp3",)


def allowed_formats(method: Method) -> tuple[str, ...]:
    """The formats a seed method can produce; the first is its default."""
    return _AUDIO_FORMATS if Method(method) is Method.EXTRACT_AUDIO else _VIDEO_FORMATS


def format_not_available(method: Method, requested: str) -> InvalidFormatError:
    allowed = ", ".join(allowed_formats(method))
    return InvalidFormatError(
        f"output_format {requested!r} is not available for {Method(method).value}; choose one of: {allowed}"
    )


def method_outputs(method: Method, fmt: str) -> list[dict]:
    """The output spec of one seed method in one of its formats (as JSON, the shape users write)."""
    method = Method(method)
    if fmt not in allowed_formats(method):
        raise format_not_available(method, fmt)
    if method is Method.EXTRACT_AUDIO:
        return [{"type": "audio", "name": method.value, "format": "mp3", "audio": {"codec": "mp3", "bitrate": "192k"}}]
    webm = fmt == "webm"
    if webm:
        video: dict = {"codec": "vp9", "crf": _VP9_CRF[method]}
    elif method is Method.CONVERT_FORMAT:
        video = {"codec": "h264", "profile": "high", "level": "4.2"}
    else:
        video = {"codec": "h264", "crf": _CRF[method], "preset": "medium"}
    if method is Method.RESIZE:
        video |= {"width": 1280, "height": 720, "fit": "stretch", "upscale": True}
    if method is Method.BLACK_AND_WHITE:
        video["grayscale"] = True
    bitrate = "192k" if method is Method.CONVERT_FORMAT else "128k"
    audio = {"codec": "opus" if webm else "aac", "bitrate": bitrate}
    return [
        {
            "type": "video",
            "name": method.value,
            "format": fmt,
            "video": video,
            "audio": audio,
            "faststart": method is Method.CONVERT_FORMAT,
        }
    ]


def method_argv(method: Method, fmt: str, source: Source, out_dir: Path) -> list[str]:
    """The one ffmpeg run of a seed method's template, writing `<out_dir>/<method>.<fmt>`: what a
    POST /process job runs (for scripts, benchmarks and the golden-argv tests)."""
    (output,) = parse_outputs(method_outputs(method, fmt))
    (step,) = plan_output(output, source, out_dir, None).steps
    return step.argv


_EXTRA: dict[str, tuple[str, list[dict]]] = {
    "web": (
        "A 720p H.264 MP4 that starts playing at once, and a poster frame.",
        [
            {
                "type": "video",
                "name": "web",
                "format": "mp4",
                "video": {"codec": "h264", "crf": 23, "preset": "medium", "height": 720},
                "audio": {"codec": "aac", "bitrate": "128k"},
            },
            {"type": "thumbnails", "name": "poster", "count": 1, "height": 720, "format": "jpg"},
        ],
    ),
    "hls": (
        "An HLS ladder built from the source (up to 1080p), and a storyboard for scrubbing previews.",
        [
            {"type": "hls", "name": "stream", "renditions": "auto", "segment_seconds": 4},
            {"type": "storyboard", "name": "storyboard", "interval_seconds": 5, "columns": 5, "width": 160},
        ],
    ),
}

# In the words of someone choosing what to make (the dashboard and GET /templates show them).
_METHOD_DESCRIPTIONS = {
    Method.COMPRESS: "A smaller copy of the video (H.264 at CRF 28, audio re-encoded): the same size, far fewer bytes.",
    Method.EXTRACT_AUDIO: "Just the sound: the first audio track as a 192 kb/s MP3.",
    Method.RESIZE: "The video scaled to exactly 1280x720 (720p).",
    Method.CONVERT_FORMAT: "An MP4 that plays in every browser and starts before it has fully loaded (H.264 High 4.2).",
    Method.BLACK_AND_WHITE: "The video in black and white.",
}


def builtin_templates() -> dict[str, tuple[str, list[dict]]]:
    """name → (description, outputs as JSON), the seed's methods first."""
    templates = {
        m.value: (_METHOD_DESCRIPTIONS[m], method_outputs(m, "mp3" if m is Method.EXTRACT_AUDIO else "mp4"))
        for m in Method
    }
    return templates | _EXTRA


def builtin_template(name: str) -> list[OutputSpec] | None:
    """The validated outputs of a built-in template, or None if there is no such built-in."""
    found = builtin_templates().get(name)
    return None if found is None else parse_outputs(found[1])
