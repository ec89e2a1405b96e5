"""Topic names that almost match a known one.

GossipSub topics are exact strings: a peer on ``chorus/coordination/v1`` and one on
``CHORUS/coordination/v1`` never hear each other, and nothing says so. A topic that differs
from a known one only by case, whitespace, separators or version is almost certainly meant
to be that one; which of the four differ is what the operator needs to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[/_\-.:]+")
_VERSION = re.compile(r"[/_\-.:]v\d+$")
_WHITESPACE = re.compile(r"\s+")


def _no_whitespace(topic: str) -> str:
    return _WHITESPACE.sub("", topic)


def _one_separator(topic: str) -> str:
    return _SEPARATORS.sub("/", topic).strip("/")


def _no_version(topic: str) -> str:
    return _VERSION.sub("", topic)


# Each aspect and the normalisation that makes two names agree on it.
ASPECTS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("whitespace", _no_whitespace),
    ("case", str.lower),
    ("separator", _one_separator),
    ("version", _no_version),
)


def _canonical(topic: str, skip: str | None = None) -> str:
    for name, step in ASPECTS:
        if name != skip:
            topic = step(topic)
    return topic


@dataclass(frozen=True)
class NearMiss:
    topic: str  # the name a peer uses
    known: str  # the known topic it is almost
    differs_by: tuple[str, ...]  # of "whitespace", "case", "separator", "version"


def near_miss(topic: str, known_topics: Iterable[str]) -> NearMiss | None:
    """The known topic ``topic`` almost is, and in which aspects it differs; None when it
    is a known topic or unlike all of them."""
    known = list(known_topics)
    if topic in known:
        return None
    canon = _canonical(topic)
    for candidate in known:
        if _canonical(candidate) != canon:
            continue
        differs = tuple(
            name
            for name, _ in ASPECTS
            if _canonical(topic, skip=name) != _canonical(candidate, skip=name)
        )
        return NearMiss(topic, candidate, differs)
    return None
