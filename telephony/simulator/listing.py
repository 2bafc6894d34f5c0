"""Filtering and paging of the Calls list, as Twilio's API does it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from telephony.simulator.calls import SimCall

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_FILTER_KEYS = ("To", "From", "Status", "ParentCallSid")
# Twilio compares StartTime and EndTime by date only, even when the SDK sends a
# full timestamp ("StartTime>" is the key; with the "=" of the query string it
# reads StartTime>=). The time of day is ignored here too.
_DATE_FILTERS: dict[str, Callable[[date, date], bool]] = {
    "": lambda day, bound: day == bound,
    ">": lambda day, bound: day >= bound,
    "<": lambda day, bound: day <= bound,
}


class ListQueryError(ValueError):
    """Raised when a list query has a value that cannot be parsed."""


def list_calls_page(
    calls: Sequence[SimCall], query: Mapping[str, str], list_uri: str
) -> dict[str, Any]:
    """Return one page of calls, newest first, in Twilio's list shape.

    ``calls`` are in creation order. A PageToken names the creation index of
    the last call on the previous page, so calls created while a client pages
    do not shift the pages after the first.
    """
    page_size = _int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page_number = _int_param(query, "Page", 0, 0, None)
    after_index = _page_token(query.get("PageToken"))
    bounds = _date_bounds(query)
    matching = [call for call in reversed(calls) if _matches(call, query, bounds)]
    if after_index is not None:
        matching = [call for call in matching if call.index < after_index]
    page = matching[:page_size]
    filters = {key: value for key, value in query.items() if not _is_paging(key)}
    first_uri = _page_uri(list_uri, filters, page_size, 0, None)
    next_uri = None
    if len(matching) > page_size:
        next_uri = _page_uri(
            list_uri, filters, page_size, page_number + 1, page[-1].index
        )
    start = page_number * page_size
    return {
        "calls": [call.to_resource() for call in page],
        "end": start + max(len(page) - 1, 0),
        "first_page_uri": first_uri,
        "next_page_uri": next_uri,
        "page": page_number,
        "page_size": page_size,
        "previous_page_uri": None,
        "start": start,
        "uri": _page_uri(list_uri, filters, page_size, page_number, after_index),
    }


@dataclass(frozen=True)
class _DateBound:
    field_name: str
    compare: Callable[[date, date], bool]
    bound: date


def _date_bounds(query: Mapping[str, str]) -> list[_DateBound]:
    bounds = []
    for field_name in ("StartTime", "EndTime"):
        for suffix, compare in _DATE_FILTERS.items():
            raw = query.get(field_name + suffix)
            if raw is not None:
                bounds.append(
                    _DateBound(field_name, compare, _parse_date(field_name, raw))
                )
    return bounds


def _matches(
    call: SimCall, query: Mapping[str, str], bounds: Sequence[_DateBound]
) -> bool:
    values = {
        "To": call.to,
        "From": call.from_,
        "Status": call.status,
        "ParentCallSid": None,
    }
    for key in _FILTER_KEYS:
        if key in query and values[key] != query[key]:
            return False
    moments = {"StartTime": call.start_time, "EndTime": call.end_time}
    for item in bounds:
        moment = moments[item.field_name]
        # A call that has not started (or ended) yet has no date to match.
        if moment is None or not item.compare(moment.date(), item.bound):
            return False
    return True


def _parse_date(field_name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ListQueryError(
            f"{field_name} {raw!r} is not a date (expected YYYY-MM-DD)"
        ) from None


def _int_param(
    query: Mapping[str, str], name: str, default: int, low: int, high: int | None
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ListQueryError(f"{name} {raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        raise ListQueryError(f"{name} {value} is out of range")
    return value


def _page_token(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.startswith("PA") or not raw[2:].isdigit():
        raise ListQueryError(f"PageToken {raw!r} is invalid")
    return int(raw[2:])


def _is_paging(key: str) -> bool:
    return key in ("PageSize", "Page", "PageToken")


def _page_uri(
    list_uri: str,
    filters: Mapping[str, str],
    page_size: int,
    page_number: int,
    after_index: int | None,
) -> str:
    params = dict(filters)
    params["PageSize"] = str(page_size)
    params["Page"] = str(page_number)
    if after_index is not None:
        params["PageToken"] = f"PA{after_index}"
    return f"{list_uri}?{urlencode(params)}"
