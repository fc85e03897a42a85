"""Numbers in request text (headers, tokens, query values) read strictly."""

from __future__ import annotations


def ascii_decimal(text: str | None, max_digits: int = 18) -> int | None:
    """The number written in `text` with ASCII digits 0-9 only, else None. `str.isdigit()` is no such
    check: it accepts "²" and "٣", which `int()` then refuses (a 500 where a 4xx was meant)."""
    if text and len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None
