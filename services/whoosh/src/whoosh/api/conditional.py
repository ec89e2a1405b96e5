"""HTTP conditional requests and long polling (RFC 9110 If-None-Match, RFC 7240 Prefer).

A client that sends the list's entity tag back in ``If-None-Match`` with ``Prefer: wait=N``
gets an answer as soon as the list changes, or ``304 Not Modified`` after N seconds: it
learns of a new agent at once without polling faster.
"""

from __future__ import annotations

import math

MAX_WAIT_S = 30.0  # a held request costs WHOOSH one open connection; bound how long


def preferred_wait_s(prefer: str | None) -> float:
    """The ``wait`` preference in seconds (capped at ``MAX_WAIT_S``); 0 when absent or
    not a number. Other preferences in the header are ignored, as RFC 7240 allows."""
    for pref in (prefer or "").split(","):
        name, _, value = pref.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                return 0.0
            return min(MAX_WAIT_S, seconds) if math.isfinite(seconds) and seconds > 0 else 0.0
    return 0.0


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, ``*`` matches)."""
    etag = etag.removeprefix("W/")
    for tag in (if_none_match or "").split(","):
        tag = tag.strip().removeprefix("W/")
        if tag == "*" or tag == etag:
            return True
    return False
