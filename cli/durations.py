"""Durations written the way people write them: ``4h``, ``5s``, ``1h30m``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)\s*(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Return the number of seconds in ``text``; a bare number is seconds.

    Raises:
        ValueError: the text is not a duration such as ``4h``, ``90m`` or ``5s``.
    """
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return int(cleaned)
    position = 0
    total = 0
    for match in _PART.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or cleaned[position:].strip():
        raise ValueError(
            f"invalid duration {text!r}: use a number with d, h, m or s, such as 4h or 5s"
        )
    return total


def format_duration(seconds: int) -> str:
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        if seconds >= size or (unit == "s" and not parts):
            amount, seconds = divmod(seconds, size)
            parts.append(f"{amount}{unit}")
    return "".join(parts)
