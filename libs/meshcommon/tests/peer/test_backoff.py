"""Per-peer backoff: doubling up to a cap, jittered, bounded in peers, reset by success."""

from __future__ import annotations

from meshcommon.peer.backoff import BackoffPolicy, PeerBackoff


def test_delay_doubles_up_to_the_cap_and_jitter_scales_it() -> None:
    policy = BackoffPolicy(2.0, 60.0, jitter=lambda: 1.1)
    assert [policy.delay_s(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]
    assert policy.delay_s(10_000) == 60  # no float overflow after a long outage
    assert policy.jittered_s(2) == 4 * 1.1


def test_a_failing_peer_waits_alone_and_success_clears_it() -> None:
    now = [100.0]
    backoff = PeerBackoff(
        BackoffPolicy(1.0, 8.0, jitter=lambda: 1.0), max_peers=10, clock=lambda: now[0]
    )
    assert backoff.ready("a") and backoff.ready("b")
    assert backoff.failed("a") == 1.0
    assert not backoff.ready("a") and backoff.ready("b")
    now[0] += 1.0
    assert backoff.ready("a")
    assert backoff.failed("a") == 2.0 and backoff.failures("a") == 2
    backoff.succeeded("a")
    assert backoff.ready("a") and backoff.failures("a") == 0 and len(backoff) == 0


def test_entries_are_bounded_and_forgotten_with_the_peer() -> None:
    backoff = PeerBackoff(BackoffPolicy(), max_peers=3, clock=lambda: 0.0)
    for pid in "abcde":
        backoff.failed(pid)
    assert len(backoff) == 3 and backoff.ready("a") and not backoff.ready("e")
    backoff.retain(["d"])
    assert len(backoff) == 1 and not backoff.ready("d")
