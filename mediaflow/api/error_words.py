"""Validation errors in the user's words: the one translation layer for every request body (POST /jobs,
/process, /templates, …), applied by `validation.py` before an error list is sent.

Pydantic reports where a value failed in its own terms: a discriminated union adds the tag to the path
(`outputs.0.video.video.heigth`, the second "video" being the output type), an unknown field is "Extra
inputs are not permitted" with no word on what is accepted, a wrong type is "Input tag 'gif' found
using 'type' does not match any of the expected tags". Here each error gets:

- `loc` as the user wrote the path (the union's tag dropped) and `field`, the same path as text
  (`outputs[0].video.heigth`);
- `msg` saying what was wrong, "did you mean …" for a near miss of a field, type or value name, and the
  accepted names or values.

The accepted names come from the JSON schema of the route's body model, walked along the error's path,
so a new field or output type is known here without a line changed.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

LOCATIONS = ("body", "query", "path", "header", "cookie")
# Names people reach for that are values of another name here: a GIF is an animation output.
KNOWN_AS = {
    "gif": "animation",
    "webp": "animation",
    "mp4": "video",
    "webm": "video",
    "mp3": "audio",
    "thumbnail": "thumbnails",
    "image": "thumbnails",
    "poster": "thumbnails",
    "sprite": "storyboard",
    "m3u8": "hls",
    "mpd": "dash",
}


@lru_cache(maxsize=64)
def body_schema(annotation: Any) -> dict:
    return TypeAdapter(annotation).json_schema()


def route_body_schema(route: Any) -> dict | None:
    """The JSON schema of the body a FastAPI route validates, or None (no body, or not a model)."""
    field = getattr(route, "body_field", None)
    annotation = getattr(getattr(field, "field_info", None), "annotation", None)
    if annotation is None:
        return None
    try:
        return body_schema(annotation)
    except Exception:  # an annotation pydantic cannot describe: the errors go out in pydantic's words
        return None


def did_you_mean(given: object, choices: list[str]) -> str:
    known = KNOWN_AS.get(str(given).lower())
    close = [known] if known in choices else difflib.get_close_matches(str(given), choices, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def field_text(path: list[Any]) -> str:
    """["outputs", 0, "video", "height"] → "outputs[0].video.height"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class SchemaWalk:
    """Follows an error's path through a JSON schema: the path as the user wrote it, and the schema
    of the object that holds the last step (its fields are what was accepted there)."""

    def __init__(self, schema: dict) -> None:
        self.defs = schema.get("$defs", {})
        self.root = schema

    def resolve(self, node: dict | None) -> dict | None:
        while node is not None:
            if "$ref" in node:
                node = self.defs.get(node["$ref"].rsplit("/", 1)[-1])
            elif "anyOf" in node:  # Optional[X] and the like: the branch that is not null
                branches = [b for b in node["anyOf"] if b.get("type") != "null"]
                if len(branches) != 1:
                    return node
                node = branches[0]
            else:
                return node
        return None

    def tags(self, node: dict | None) -> dict[str, str]:
        """A discriminated union's tag → the name of its variant's definition."""
        node = self.resolve(node)
        mapping = (node or {}).get("discriminator", {}).get("mapping", {})
        return {tag: ref.rsplit("/", 1)[-1] for tag, ref in mapping.items()}

    def follow(self, loc: list[Any]) -> tuple[list[Any], dict | None, dict | None]:
        """(the path as written, the schema holding the last step, the schema at the last step)."""
        written: list[Any] = []
        parent: dict | None = None
        node = self.resolve(self.root)
        for step in loc:
            tags = self.tags(node)
            if isinstance(step, str) and step in tags:  # the union's own marker, not a field the user wrote
                node = self.resolve(self.defs.get(tags[step]))
                continue
            written.append(step)
            parent = node
            if node is None:
                continue
            if isinstance(step, int):
                node = self.resolve(node.get("items"))
            else:
                node = self.resolve(node.get("properties", {}).get(step))
        return written, parent, node


def _quoted_list(text: str) -> list[str]:
    """ "'mp4', 'mov' or 'webm'" (pydantic's ctx.expected) → ["mp4", "mov", "webm"]."""
    return re.findall(r"'([^']*)'", text)


def in_words(error: dict[str, Any], walk: SchemaWalk | None) -> dict[str, Any]:
    """One pydantic error with `loc`, `field` and `msg` in the user's words (other keys unchanged)."""
    loc = list(error.get("loc", ()))
    where = loc[:1] if loc and loc[0] in LOCATIONS else []
    path = loc[len(where) :]
    written, parent, node = walk.follow(path) if walk else (path, None, None)
    kind, ctx, given = error.get("type"), error.get("ctx") or {}, error.get("input")
    msg = str(error.get("msg", ""))
    if kind == "extra_forbidden" and written:
        accepted = sorted((parent or {}).get("properties", {}))
        name = written[-1]
        msg = f'unknown field "{name}"{did_you_mean(name, accepted)}'
        if accepted:
            msg += f"; the fields here: {', '.join(accepted)}"
    elif kind == "union_tag_invalid":
        tags = _quoted_list(str(ctx.get("expected_tags", "")))
        field = str(ctx.get("discriminator", "type")).strip("'")
        msg = f'no {field} "{ctx.get("tag")}"{did_you_mean(ctx.get("tag"), tags)}; the {field}s: {", ".join(tags)}'
    elif kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "type")).strip("'")
        tags = sorted(walk.tags(node)) if walk else []
        msg = f'"{field}" is missing' + (f"; it is one of: {', '.join(tags)}" if tags else "")
    elif kind in ("literal_error", "enum"):
        accepted = _quoted_list(str(ctx.get("expected", "")))
        msg = f'"{given}" is not accepted{did_you_mean(given, accepted)}; accepted: {", ".join(accepted)}'
    elif kind == "missing" and written:
        msg = f'"{written[-1]}" is required'
    return {**error, "loc": [*where, *written], "field": field_text(written), "msg": msg}


def errors_in_words(errors: list[dict[str, Any]], route: Any) -> list[dict[str, Any]]:
    schema = route_body_schema(route)
    walk = SchemaWalk(schema) if schema else None
    return [in_words(error, walk) for error in errors]
