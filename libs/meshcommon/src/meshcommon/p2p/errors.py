"""Find the real reason a dial failed.

py-libp2p wraps a peer-ID mismatch (``PeerIDMismatchesPubkey``, which is what a Swarm VIP
routing a dial to the wrong replica looks like) four levels deep in a generic
``SwarmDialAllFailedError``. Users need the real cause in logs and in the API, and the
services need the peer the address really answered with (``answered_by``) as a field: the
only place py-libp2p's text is read is here, and the upstream function that writes it
(``PatternXX.handshake_outbound``) is fingerprinted (``overrides.UPSTREAM``).
"""

from __future__ import annotations

import re
from typing import Final

REASON_PEER_ID_MISMATCH: Final = "peer_id_mismatch"
REASON_REFUSED: Final = "connection_refused"
REASON_TIMEOUT: Final = "timeout"
REASON_UNREACHABLE: Final = "unreachable"
REASON_DIAL_ERROR: Final = "dial_error"
# Refused by the private network (meshcommon.p2p.pnet.PnetRefused.dial_reason).
REASON_PNET_WRONG_KEY: Final = "pnet_wrong_key"
REASON_PNET_NO_KEY: Final = "pnet_no_key"
REASON_PNET_CLOSED: Final = "pnet_closed"
# Every reason ``classify`` returns (metrics start these at 0, so a first failure shows).
DIAL_FAILURE_REASONS: Final = (
    REASON_PEER_ID_MISMATCH,
    REASON_REFUSED,
    REASON_TIMEOUT,
    REASON_UNREACHABLE,
    REASON_DIAL_ERROR,
    REASON_PNET_WRONG_KEY,
    REASON_PNET_NO_KEY,
    REASON_PNET_CLOSED,
)


# py-libp2p 0.8.1 names the peer the handshake met only in the text of
# PeerIDMismatchesPubkey ("remote_peer=<dialled>, remote_peer_id_from_pubkey=<met>").
MISMATCH_TYPE: Final = "PeerIDMismatchesPubkey"
_MET = re.compile(r"remote_peer_id_from_pubkey=(\w+)")


def _children(exc: BaseException) -> list[BaseException]:
    kids: list[BaseException] = []
    if isinstance(exc, BaseExceptionGroup):
        kids.extend(exc.exceptions)
    if exc.__cause__ is not None:
        kids.append(exc.__cause__)
    elif exc.__context__ is not None and not exc.__suppress_context__:
        kids.append(exc.__context__)
    return kids


def root_cause(exc: BaseException) -> BaseException:
    """The deepest exception in the cause/context chain (groups followed depth-first)."""
    best, best_depth = exc, 0
    stack: list[tuple[BaseException, int]] = [(exc, 0)]
    seen: set[int] = set()
    while stack:
        cur, depth = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if depth > best_depth:
            best, best_depth = cur, depth
        stack.extend((kid, depth + 1) for kid in _children(cur))
    return best


def classify(exc: BaseException) -> str:
    """A short stable reason for metrics: peer_id_mismatch, timeout, refused, ..."""
    dial_reason = getattr(exc, "dial_reason", None)  # pnet.PnetRefused names its own
    if isinstance(dial_reason, str):
        return dial_reason
    text = f"{type(exc).__name__} {exc}".lower()
    if "peeridmismatch" in text or "peer id mismatch" in text:
        return REASON_PEER_ID_MISMATCH
    if "refused" in text:
        return REASON_REFUSED
    # trio's fail_after: TooSlowError, whose root cause is "Cancelled: ... due to deadline".
    if any(word in text for word in ("timeout", "timed out", "tooslow", "toolong", "deadline")):
        return REASON_TIMEOUT
    if "unreachable" in text or "no route" in text:
        return REASON_UNREACHABLE
    return REASON_DIAL_ERROR


def describe_dial_error(exc: BaseException) -> tuple[str, str]:
    """``(reason, detail)`` for a failed dial, from its root cause."""
    cause = root_cause(exc)
    detail = f"{type(cause).__name__}: {cause}".strip().rstrip(":")
    reason = classify(cause)
    if reason == REASON_DIAL_ERROR:
        reason = classify(exc)
    return reason, detail[:300]


def _chain(exc: BaseException) -> list[BaseException]:
    """Every exception in the cause/context chain (groups followed), ``exc`` first."""
    out: list[BaseException] = []
    stack, seen = [exc], set()
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        out.append(cur)
        stack.extend(_children(cur))
    return out


def answered_by(exc: BaseException) -> str | None:
    """The peer ID whose key answered a dial that failed on a peer-ID mismatch (a Swarm
    VIP routing to the wrong replica: who is really there); None for any other failure."""
    for cur in _chain(exc):
        if type(cur).__name__ == MISMATCH_TYPE:
            met = _MET.search(str(cur))
            if met:
                return met.group(1)
    return None
