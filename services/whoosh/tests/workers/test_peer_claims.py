"""A host that names an agent's peer ID without holding its key never gets an address into
the bootstrap list, and WHOOSH names it with the reason; a cloned key (two hosts that both
prove the peer ID) stays a conflict; unsigned answers follow WHOOSH_UNSIGNED_HEALTH.

Whole rounds: discovery, the poller (HTTP through a mock transport), the directory."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest
from whoosh_testkit import (
    PEER_A,
    PEER_B,
    health_body,
    make_poller,
    make_settings,
    signed_record,
)

from meshcommon.peer_record import REASONS
from whoosh.api.views import agents_view
from whoosh.domain.targets import AgentTarget, DiscoveryResult
from whoosh.metrics import WhooshMetrics
from whoosh.workers.directory import AgentDirectory, Snapshot

pytestmark = pytest.mark.anyio

REAL = "10.0.13.2"  # agent A, holding its key
IMPOSTOR = "10.0.13.66"


class FixedSource:
    name = "static"

    def __init__(self, *ips: str) -> None:
        self.ips = ips

    async def discover(self) -> DiscoveryResult:
        targets = tuple(AgentTarget(f"http://{ip}:8080", ip, ip) for ip in self.ips)
        return DiscoveryResult(targets, None, "static")


async def round_with(bodies: dict[str, dict[str, Any]], rounds: int = 1, **settings: Any) -> tuple[
    Snapshot, WhooshMetrics, AgentDirectory
]:  # fmt: skip
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=bodies[request.url.host])

    metrics = WhooshMetrics()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    poller = make_poller(make_settings(health_attempts=1, **settings), client, metrics)
    directory = AgentDirectory(FixedSource(*bodies), poller, metrics, 3600, converge_window_s=0)
    for _ in range(rounds):
        snap = await directory.refresh()
    await client.aclose()
    return snap, metrics, directory


def listed_addresses(snap: Snapshot) -> set[str]:
    out: set[str] = set()
    for peer in snap.bootstrap.bootstrap_peers:
        out |= {peer.multiaddr, *peer.multiaddrs}
        for c in peer.claimants:
            out |= set(c.multiaddrs)
    return out


def impostor_claim(kind: str) -> dict[str, Any]:
    """What a host at IMPOSTOR answers, claiming PEER_A in one of several ways."""
    body = health_body(PEER_A, IMPOSTOR, name="agent-a", signed=False)
    real = health_body(PEER_A, REAL, name="agent-a")
    if kind == "no_record":
        return body
    if kind == "bad_signature":
        envelope = bytearray(base64.b64decode(signed_record(PEER_A, body["multiaddrs"])))
        envelope[-1] ^= 1
        return {**body, "peer_record": base64.b64encode(envelope).decode()}
    if kind == "other_key":  # its own key's valid record, under PEER_A's name
        return {**body, "peer_record": signed_record(PEER_B, body["multiaddrs"])}
    if kind == "replay":  # a copy of the real agent's answer, record included
        return real
    if kind == "from_the_future":
        seq = time.time_ns() + 3600 * 10**9
        return {**body, "peer_record": signed_record(PEER_A, body["multiaddrs"], seq=seq)}
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("no_record", "missing"),
        ("bad_signature", "bad_signature"),
        ("other_key", "wrong_peer_id"),
        ("replay", "replayed"),
        ("from_the_future", "from_the_future"),
    ],
)
async def test_an_impostor_is_never_listed_and_is_named(kind: str, reason: str) -> None:
    bodies = {REAL: health_body(PEER_A, REAL, name="agent-a"), IMPOSTOR: impostor_claim(kind)}
    snap, metrics, _ = await round_with(bodies)

    (entry,) = snap.bootstrap.bootstrap_peers
    assert entry.peer_id == PEER_A and not entry.conflict and entry.signed is True
    assert entry.multiaddrs == [f"/ip4/{REAL}/tcp/9000/p2p/{PEER_A}"]
    assert not any(IMPOSTOR in a for a in listed_addresses(snap))
    assert snap.duplicates == ()

    view = agents_view(snap)
    (named,) = view["impostors"]
    assert named["url"] == f"http://{IMPOSTOR}:8080" and named["peer_id"] == PEER_A
    assert named["reason"] == reason and named["detail"]
    row = next(a for a in view["agents"] if a["url"] == named["url"])
    # Nothing else of its answer is trusted: not its name, not its addresses.
    assert row["state"] == "unreachable" and row["reason"] == f"record_{reason}"
    assert row["name"] == IMPOSTOR and row["multiaddrs"] == [] and row["signed"] is False
    value = metrics.registry.get_sample_value(
        "whoosh_peer_records_rejected_total", {"reason": reason}
    )
    assert value == 1
    assert metrics.registry.get_sample_value("whoosh_claims_refused", {"reason": reason}) == 1


async def test_a_record_naming_other_addresses_lists_only_those_while_nobody_proves_better() -> (
    None
):
    """An agent that announces another address than the one it is reached at (or a copy
    of an agent's answer while the agent itself is not discovered): what is listed is what
    the key holder signed, never the answering host's own address."""
    snap, _, _ = await round_with({IMPOSTOR: impostor_claim("replay")})
    (entry,) = snap.bootstrap.bootstrap_peers
    assert entry.peer_id == PEER_A and entry.signed is True
    assert entry.multiaddrs == [f"/ip4/{REAL}/tcp/9000/p2p/{PEER_A}"]
    assert not any(IMPOSTOR in a for a in listed_addresses(snap))
    assert agents_view(snap)["impostors"] == []


async def test_a_cloned_key_on_two_hosts_stays_a_conflict() -> None:
    other = "10.0.13.3"
    bodies = {REAL: health_body(PEER_A, REAL), other: health_body(PEER_A, other)}
    snap, _, _ = await round_with(bodies)
    (entry,) = snap.bootstrap.bootstrap_peers
    assert entry.conflict and entry.signed
    assert {c.url for c in entry.claimants} == {f"http://{REAL}:8080", f"http://{other}:8080"}
    assert all(c.signed and c.record_seq for c in entry.claimants)
    assert agents_view(snap)["impostors"] == []


async def test_unsigned_answers_are_refused_by_default_and_listed_when_accepted() -> None:
    bodies = {REAL: health_body(PEER_B, REAL, signed=False)}
    snap, _, _ = await round_with(bodies)
    assert snap.bootstrap.bootstrap_peers == []
    assert [i["reason"] for i in agents_view(snap)["impostors"]] == ["missing"]

    snap, metrics, _ = await round_with(bodies, unsigned_health="accept")
    (entry,) = snap.bootstrap.bootstrap_peers
    assert entry.peer_id == PEER_B and entry.signed is False and entry.record_seq is None
    assert metrics.registry.get_sample_value("whoosh_agents_unsigned") == 1


async def test_accepted_unsigned_never_next_to_a_host_that_proves_the_peer_id() -> None:
    bodies = {REAL: health_body(PEER_A, REAL), IMPOSTOR: impostor_claim("no_record")}
    snap, _, _ = await round_with(bodies, unsigned_health="accept")
    (entry,) = snap.bootstrap.bootstrap_peers
    assert not entry.conflict and entry.signed is True
    assert not any(IMPOSTOR in a for a in listed_addresses(snap))
    (named,) = agents_view(snap)["impostors"]
    assert named["reason"] == "missing" and f"http://{REAL}:8080" in named["detail"]


async def test_an_unchanged_record_is_verified_once_across_rounds() -> None:
    bodies = {REAL: health_body(PEER_A, REAL)}
    snap, metrics, directory = await round_with(bodies, rounds=3)
    assert snap.bootstrap.bootstrap_peers[0].signed
    # Same bytes every round: checked once (the claim and the clock every round).
    assert directory.poller.records.verified == 1
    assert metrics.registry.get_sample_value("whoosh_peer_record_verifications_total") == 1


def test_every_reason_is_exported_from_the_start() -> None:
    metrics = WhooshMetrics()
    for reason in ("missing", *REASONS, "replayed"):
        value = metrics.registry.get_sample_value(
            "whoosh_peer_records_rejected_total", {"reason": reason}
        )
        assert value == 0, reason
