"""Judging an agent's answer to GET /api/health, without any HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from whoosh_testkit import PEER_A, PEER_B, health_body, record_check, signed_record

from meshcommon.models import AgentHealth, utcnow
from meshcommon.multiaddr_policy import MultiaddrPolicy
from whoosh.domain.agent_status import (
    AgentStatus,
    CheckFailed,
    RetryableCheckFailed,
    read_health,
    status_from_failure,
    status_from_health,
)
from whoosh.domain.targets import AgentTarget

POLICY = MultiaddrPolicy.from_settings(["10.0.13.0/24"])
TARGET = AgentTarget("http://10.0.13.5:8080", "10.0.13.5", "10.0.13.5")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 1, 0, 0, 15, tzinfo=UTC)


def body(data: object) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("code", "content", "kind", "reason"),
    [
        (500, b"", RetryableCheckFailed, "http_500"),
        (503, b"", RetryableCheckFailed, "http_503"),
        (404, b"", CheckFailed, "http_404"),
        (200, b"<html>", CheckFailed, "malformed_json"),
        (200, body({"multiaddrs": "nope"}), CheckFailed, "invalid_health"),
        (200, body(health_body(" ", "10.0.13.5")), CheckFailed, "invalid_health"),
    ],
)
def test_an_unusable_answer_says_why_and_whether_to_ask_again(
    code: int, content: bytes, kind: type[CheckFailed], reason: str
) -> None:
    with pytest.raises(CheckFailed) as info:
        read_health(code, "Reason", content)
    assert type(info.value) is kind
    assert info.value.reason == reason


def test_a_valid_answer_is_the_agents_health() -> None:
    health = read_health(200, "OK", body(health_body(PEER_A, "10.0.13.5", name="alpha")))
    assert (health.peer_id, health.name) == (PEER_A, "alpha")


def test_healthy_keeps_the_routable_multiaddrs_and_names_the_rejected_ones() -> None:
    health = AgentHealth.model_validate(health_body(PEER_A, "10.0.13.5", "127.0.0.1"))
    status = status_from_health(
        TARGET, health, POLICY, attempts=2, latency_ms=3.5, previous=None, now=T0,
        record=record_check(health, "10.0.13.5"),
    )  # fmt: skip
    assert (status.state, status.reason, status.last_seen) == ("healthy", None, T0)
    assert status.multiaddrs == [f"/ip4/10.0.13.5/tcp/9000/p2p/{PEER_A}"]
    assert [r.reason for r in status.rejected] == ["loopback"]
    assert (status.attempts, status.latency_ms) == (2, 3.5)


def test_nothing_dialable_is_unreachable_and_keeps_the_last_healthy_time() -> None:
    before = AgentStatus(TARGET, "healthy", last_seen=T0)
    health = AgentHealth.model_validate(health_body(PEER_A, "127.0.0.1"))
    health.multiaddrs.append(f"/ip4/10.0.13.5/tcp/9000/p2p/{PEER_B}")  # someone else's id
    status = status_from_health(
        TARGET, health, POLICY, attempts=1, latency_ms=None, previous=before, now=T1,
        record=record_check(health, "127.0.0.1"),
    )  # fmt: skip
    assert (status.state, status.reason) == ("unreachable", "no_routable_multiaddrs")
    assert status.detail == "2 reported, rejected: loopback, not_in_signed_record"
    assert status.last_seen == T0
    assert status.peer_id == PEER_A  # what it answered is still shown


def test_a_failure_keeps_the_last_healthy_time() -> None:
    before = AgentStatus(TARGET, "healthy", last_seen=T0)
    failure = RetryableCheckFailed("timeout", "timed out")
    status = status_from_failure(TARGET, failure, attempts=3, latency_ms=2000.0, previous=before)
    assert (status.state, status.reason, status.detail) == ("unreachable", "timeout", "timed out")
    assert (status.attempts, status.last_seen) == (3, T0)
    assert (
        status_from_failure(TARGET, failure, attempts=1, latency_ms=None, previous=None).last_seen
        is None
    )


def test_a_gateway_is_also_listed_at_its_node_address() -> None:
    from whoosh.domain.agent_status import published_multiaddrs

    pid = PEER_A
    target = AgentTarget(
        "http://10.0.13.9:8080",
        "CHORUS_chorus-gateway.1",
        "10.0.13.9",
        task_id="gw1",
        node_address="192.168.7.2",
        host_ports=((9000, 9001), (8080, 8082)),
    )
    reported = [f"/ip4/10.0.13.9/tcp/9000/p2p/{pid}", "garbage"]
    # Only the libp2p port the agent itself reports; not the HTTP port.
    assert published_multiaddrs(target, reported, pid) == [f"/ip4/192.168.7.2/tcp/9001/p2p/{pid}"]
    plain = AgentTarget("http://10.0.13.9:8080", "CHORUS_chorus.1", "10.0.13.9")
    assert published_multiaddrs(plain, reported, pid) == []
    health = AgentHealth(peer_id=pid, multiaddrs=reported[:1])
    health.peer_record = signed_record(pid, reported[:1])
    policy = MultiaddrPolicy.from_settings(["10.0.13.0/24"])
    status = status_from_health(
        target, health, policy, attempts=1, latency_ms=1.0, previous=None, now=utcnow(),
        record=record_check(health, "10.0.13.9"),
    )  # fmt: skip
    # The overlay address first (preferred inside), the node address after it.
    assert status.multiaddrs == [reported[0], f"/ip4/192.168.7.2/tcp/9001/p2p/{pid}"]
