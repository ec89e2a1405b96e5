from __future__ import annotations

import pytest

from meshcommon.p2p.errors import answered_by, classify, describe_dial_error, root_cause


class PeerIDMismatchesPubkey(Exception):
    """Same name as py-libp2p's, so classification by name is exercised."""


class SwarmDialAllFailedError(Exception):
    pass


class SwarmException(Exception):
    pass


class SecurityUpgradeFailure(Exception):
    pass


def _four_deep() -> BaseException:
    """SwarmDialAllFailedError <- SwarmException <- SecurityUpgradeFailure <- mismatch."""
    try:
        try:
            try:
                try:
                    raise PeerIDMismatchesPubkey("expected QmA, got QmB")
                except PeerIDMismatchesPubkey as e:
                    raise SecurityUpgradeFailure("upgrade failed") from e
            except SecurityUpgradeFailure as e:
                raise SwarmException("failed to upgrade security") from e
        except SwarmException as e:
            raise SwarmDialAllFailedError("all dials failed") from e
    except SwarmDialAllFailedError as top:
        return top
    raise AssertionError("unreachable")


def test_root_cause_four_deep() -> None:
    top = _four_deep()
    cause = root_cause(top)
    assert type(cause) is PeerIDMismatchesPubkey
    assert str(cause) == "expected QmA, got QmB"


def test_describe_dial_error_four_deep() -> None:
    reason, detail = describe_dial_error(_four_deep())
    assert reason == "peer_id_mismatch"
    assert detail.startswith("PeerIDMismatchesPubkey: ")
    assert "expected QmA, got QmB" in detail


def test_root_cause_follows_implicit_context() -> None:
    try:
        try:
            raise ConnectionRefusedError("Connection refused")
        except ConnectionRefusedError:
            raise SwarmException("dial failed")  # noqa: B904 - implicit __context__ on purpose
    except SwarmException as top:
        assert type(root_cause(top)) is ConnectionRefusedError
        assert describe_dial_error(top)[0] == "connection_refused"


def test_root_cause_of_plain_exception_is_itself() -> None:
    exc = ValueError("x")
    assert root_cause(exc) is exc
    assert describe_dial_error(exc) == ("dial_error", "ValueError: x")


def test_exception_group() -> None:
    group = ExceptionGroup(
        "dial attempts", [ConnectionRefusedError("refused"), _four_deep(), OSError("other")]
    )
    assert type(root_cause(group)) is PeerIDMismatchesPubkey
    wrapped = SwarmDialAllFailedError("all failed")
    wrapped.__cause__ = group
    reason, detail = describe_dial_error(wrapped)
    assert reason == "peer_id_mismatch"
    assert "PeerIDMismatchesPubkey" in detail


def test_cycle_does_not_loop() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__ = b
    b.__cause__ = a
    assert root_cause(a) is b


def test_detail_truncated_and_empty_message() -> None:
    _, detail = describe_dial_error(TimeoutError())
    assert detail == "TimeoutError"
    _, detail = describe_dial_error(RuntimeError("x" * 1000))
    assert len(detail) == 300


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionRefusedError("[Errno 111] Connection refused"), "connection_refused"),
        (TimeoutError("timed out"), "timeout"),
        # trio.fail_after: the root cause of its TooSlowError
        (RuntimeError("Cancelled: cancelled due to deadline"), "timeout"),
        (OSError("Network is unreachable"), "unreachable"),
        (OSError("No route to host"), "unreachable"),
        (RuntimeError("peer id mismatch"), "peer_id_mismatch"),
        (RuntimeError("something else"), "dial_error"),
    ],
)
def test_classify(exc: BaseException, reason: str) -> None:
    assert classify(exc) == reason


def test_top_level_reason_used_when_root_is_generic() -> None:
    top = SwarmException("dial timed out")
    top.__cause__ = RuntimeError("cancelled")
    assert describe_dial_error(top) == ("timeout", "RuntimeError: cancelled")


def test_answered_by_is_the_peer_the_handshake_met() -> None:
    """py-libp2p names it only in PeerIDMismatchesPubkey's text; errors reads it (the one
    place), and a service gets a field."""
    try:
        try:
            raise PeerIDMismatchesPubkey(
                "peer id does not correspond to the received pubkey: "
                "remote_peer=12D3KooWA, remote_peer_id_from_pubkey=12D3KooWB"
            )
        except PeerIDMismatchesPubkey as e:
            raise SwarmDialAllFailedError("all dials failed") from e
    except SwarmDialAllFailedError as top:
        assert answered_by(top) == "12D3KooWB"
    assert answered_by(_four_deep()) is None  # a mismatch that names nobody
    assert answered_by(ConnectionRefusedError("refused")) is None
