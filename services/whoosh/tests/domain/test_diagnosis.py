"""WHOOSH's findings, from Docker-shaped API answers (read by the adapter) and health
statuses built the way the poller builds them."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from whoosh_testkit import KEYS, PEER_A, PEER_B, PEER_C, record_check, signed_record

from meshcommon.diagnosis import Unavailable, at_least
from meshcommon.models import AgentHealth
from meshcommon.multiaddr_policy import MultiaddrPolicy
from whoosh.adapters.swarm_inspect import read_swarm_facts, resolve_names
from whoosh.domain.agent_status import (
    AgentStatus,
    CheckFailed,
    status_from_failure,
    status_from_health,
)
from whoosh.domain.bootstrap_list import build_bootstrap
from whoosh.domain.diagnosis import WhooshFacts, diagnose
from whoosh.domain.peer_claims import RecordCheck
from whoosh.domain.targets import AgentTarget

# Real keys: their answers carry valid signed records, as every current agent's do.
PEERS = [PEER_A, PEER_B, PEER_C]
NOW = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = MultiaddrPolicy.from_settings(["10.231.0.0/16"])
NET = "CHORUS_chorus_net"


def _task(slot: int, state: str = "running", *, desired: str = "running", **kw: Any) -> dict:
    nets = kw.get("nets", {NET: f"10.231.0.{slot + 10}"})
    return {
        "ID": kw.get("tid", f"task{slot}{state}"),
        "Slot": slot,
        "NodeID": "node1",
        "DesiredState": desired,
        "UpdatedAt": kw.get("at", "2025-01-01T00:00:00Z"),
        "Status": {"State": state, "Err": kw.get("err", ""), "Message": state},
        "NetworksAttachments": [
            {"Network": {"Spec": {"Name": n}}, "Addresses": [f"{ip}/16"]} for n, ip in nets.items()
        ],
    }


class FakeInspector:
    def __init__(
        self,
        tasks: list[dict],
        *,
        mode: str | None = "dnsrr",
        replicas: int = 3,
        network: str = NET,
    ) -> None:
        spec: dict[str, Any] = {
            "Name": "CHORUS_chorus",
            "Mode": {"Replicated": {"Replicas": replicas}},
        }
        if mode is not None:
            spec["EndpointSpec"] = {"Mode": mode}
        endpoint = {"VirtualIPs": [{"Addr": "10.231.0.2/16"}]} if mode in (None, "vip") else {}
        self._services = [
            {"ID": "w", "Spec": {"Name": "CHORUS_whoosh"}},
            {"ID": "c", "Spec": spec, "Endpoint": endpoint},
        ]
        self._tasks = tasks
        self._networks = [
            {"Name": "ingress", "Labels": {}, "IPAM": {"Config": [{"Subnet": "10.0.0.0/24"}]}},
            {
                "Name": network,
                "Labels": {"com.docker.stack.namespace": network.split("_", 1)[0]},
                "IPAM": {"Config": [{"Subnet": "10.231.0.0/16"}]},
            },
        ]

    def services(self) -> list[dict]:
        return self._services

    def tasks(self, service_id: str) -> list[dict]:
        assert service_id == "c"
        return self._tasks

    def networks(self) -> list[dict]:
        return self._networks


def _healthy(url: str, peer: str, *ips: str, name: str = "", **health: Any) -> AgentStatus:
    host = url.split("//")[1].split(":")[0]
    multiaddrs = [f"/ip4/{ip}/tcp/9000/p2p/{peer}" for ip in ips]
    health.setdefault("private_network", True)
    if peer in KEYS:
        health.setdefault("peer_record", signed_record(peer, multiaddrs))
    body = AgentHealth(peer_id=peer, name=name or host, multiaddrs=multiaddrs, **health)
    return status_from_health(
        AgentTarget(url, name or host, host), body, POLICY, attempts=1, latency_ms=1.0,
        previous=None, now=NOW, record=record_check(body, host), unsigned="accept",
    )  # fmt: skip


def _facts(statuses: list[AgentStatus], inspector: FakeInspector | None, **kw: Any) -> WhooshFacts:
    view = build_bootstrap(statuses, kw.pop("expected", 3), {}, NOW)
    swarm = (
        read_swarm_facts(inspector, "chorus", kw.pop("network", "chorus_net"))
        if inspector
        else Unavailable("no Docker Engine API configured")
    )
    return WhooshFacts(
        source="swarm",
        discovery_error=kw.pop("error", None),
        expected=view.summary.expected,
        statuses=tuple(statuses),
        duplicates=view.duplicates,
        overlay_cidrs=kw.pop("overlay", ()),
        agent_port=8080,
        swarm=swarm,
        names=kw.pop("names", ()),
    )


def _three_healthy() -> list[AgentStatus]:
    return [
        _healthy(f"http://10.231.0.{i + 11}:8080", PEERS[i], f"10.231.0.{i + 11}") for i in range(3)
    ]


def _ids(facts: WhooshFacts) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in diagnose(facts):
        out.setdefault(f.id, []).append(f)
    return out


def test_a_healthy_swarm_has_no_finding() -> None:
    facts = _facts(_three_healthy(), FakeInspector([_task(i) for i in (1, 2, 3)]))
    assert facts.swarm is not None and facts.swarm.network_found
    assert diagnose(facts) == []


def test_vip_endpoint_mode_is_critical_with_the_vips() -> None:
    for mode in ("vip", None):  # unset is Swarm's default: vip
        facts = _facts(_three_healthy(), FakeInspector([_task(i) for i in (1, 2, 3)], mode=mode))
        (f,) = _ids(facts)["agent_service_vip"]
        assert f.severity == "critical"
        assert f.evidence["virtual_ips"] == ["10.231.0.2/16"]
        assert "--endpoint-mode dnsrr CHORUS_chorus" in f.fix


def test_a_prefixed_network_that_does_not_exist_names_the_one_that_does() -> None:
    inspector = FakeInspector(
        [_task(i, nets={"prod_chorus_net": f"10.231.0.{i}"}) for i in (1, 2, 3)],
        network="prod_chorus_net",
    )
    facts = _facts([], inspector, network="CHORUS_chorus_net", error="tasks without an address")
    found = _ids(facts)
    (f,) = found["swarm_network_not_found"]
    assert f.severity == "critical"
    assert f.evidence["similar_networks"] == ["prod_chorus_net"]
    assert f.evidence["agent_tasks_attached_to"] == ["prod_chorus_net"]
    assert "WHOOSH_SWARM_NETWORK=chorus_net" in f.fix
    # Every replica is named missing: no address on the configured network.
    (m,) = found["agents_missing"]
    assert m.severity == "critical"
    assert [(r["slot"], r["why"]) for r in m.evidence["missing"]] == [
        (i, "no_address_on_network") for i in (1, 2, 3)
    ]
    assert "discovery_failed" not in found  # the specific cause is named instead


def test_each_missing_replica_is_named_with_why() -> None:
    statuses = _three_healthy()[:1]
    statuses.append(
        status_from_failure(
            AgentTarget("http://10.231.0.12:8080", "CHORUS_chorus.2", "10.231.0.12"),
            CheckFailed("connect_error", "All connection attempts failed"),
            attempts=4,
            latency_ms=None,
            previous=None,
        )
    )
    tasks = [
        _task(1),
        _task(2),
        _task(
            3, "failed", desired="shutdown", err="task: non-zero exit (1)", at="2025-01-01T00:01"
        ),
        _task(3, "failed", desired="shutdown", tid="old", at="2025-01-01T00:00"),
        _task(3, "pending", tid="new", at="2025-01-01T00:02", nets={}),
    ]
    (f,) = _ids(_facts(statuses, FakeInspector(tasks)))["agents_missing"]
    assert f.severity == "warning"
    assert (f.evidence["expected"], f.evidence["healthy"]) == (3, 1)
    by_slot = {r["slot"]: r for r in f.evidence["missing"]}
    assert by_slot[2]["why"] == "health_failing" and by_slot[2]["reason"] == "connect_error"
    assert by_slot[3]["why"] == "not_running"
    assert (by_slot[3]["state"], by_slot[3]["failed_tasks"]) == ("pending", 2)
    assert by_slot[3]["error"] == "task: non-zero exit (1)"  # the last failure's cause


def test_one_peer_id_at_two_hosts() -> None:
    statuses = _three_healthy()
    statuses[2] = _healthy("http://10.231.0.13:8080", PEERS[1], "10.231.0.13")
    found = _ids(_facts(statuses, FakeInspector([_task(i) for i in (1, 2, 3)])))
    (dup,) = found["peer_id_duplicate"]
    assert dup.evidence["peer_id"] == PEERS[1]
    assert sorted(dup.evidence["targets"]) == ["http://10.231.0.12:8080", "http://10.231.0.13:8080"]
    (missing,) = found["agents_missing"]
    (row,) = missing.evidence["missing"]
    assert row["why"] == "wrong_peer_id" and row["also_at"] == ["http://10.231.0.12:8080"]


def test_loopback_only_agent_and_off_overlay_agent() -> None:
    statuses = _three_healthy()
    statuses[1] = _healthy(
        "http://10.231.0.12:8080",
        PEERS[1],
        rejected_multiaddrs=[{"multiaddr": "/ip4/127.0.0.1/tcp/9000", "reason": "loopback"}],
    )
    statuses[2] = _healthy("http://10.231.0.13:8080", PEERS[2], "172.18.0.5")  # gwbridge only
    found = _ids(_facts(statuses, None, overlay=("10.231.0.0/16",)))
    (lo,) = found["agent_no_routable_address"]
    assert lo.severity == "critical" and "only loopback" in lo.title
    assert lo.evidence["agents"][0]["not_advertised_by_agent"][0]["reason"] == "loopback"
    (off,) = found["agent_off_overlay"]
    assert off.severity == "warning"
    assert off.evidence["agents"][0]["multiaddrs"] == [f"/ip4/172.18.0.5/tcp/9000/p2p/{PEERS[2]}"]


def test_one_address_advertised_by_two_peers() -> None:
    statuses = _three_healthy()
    statuses[2] = _healthy("http://10.231.0.13:8080", PEERS[2], "10.231.0.12")
    (f,) = _ids(_facts(statuses, None))["address_shared"]
    assert f.evidence["address"] == "/ip4/10.231.0.12/tcp/9000"
    assert {p["peer_id"] for p in f.evidence["peers"]} == {PEERS[1], PEERS[2]}


@pytest.mark.anyio
async def test_configured_names_a_vip_and_a_name_in_front_of_several() -> None:
    async def resolver(name: str) -> list[str]:
        return {"chorus": ["10.231.0.2"], "agents": ["10.231.0.11", "10.231.0.12"]}[name]

    targets = [
        AgentTarget("http://chorus:8080", "chorus:8080", "chorus"),
        AgentTarget("http://agents:8080", "agents:8080", "agents"),
        AgentTarget("http://10.231.0.13:8080", "x", "10.231.0.13"),
    ]
    names = await resolve_names(targets, None, resolver=resolver)
    assert [n.name for n in names] == ["chorus", "agents"]
    inspector = FakeInspector([_task(i) for i in (1, 2, 3)], mode="vip")
    found = _ids(_facts(_three_healthy(), inspector, names=names))
    (vip,) = found["agent_name_not_a_task"]
    assert vip.evidence["not_a_task"] == ["10.231.0.2"] and "virtual IP" in vip.title
    (several,) = found["agent_name_fronts_several"]
    assert several.severity == "warning"
    assert several.evidence["resolves_to"] == ["10.231.0.11", "10.231.0.12"]


@pytest.mark.anyio
async def test_a_configured_name_that_does_not_resolve_is_named_with_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("whoosh.adapters.swarm_inspect.RESOLVE_TIMEOUT_S", 0.05)

    async def resolver(name: str) -> list[str]:
        if name == "slow":
            await asyncio.sleep(5)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    targets = [
        AgentTarget("http://chorus:8080", "chorus:8080", "chorus"),
        AgentTarget("http://slow:8080", "slow:8080", "slow"),
    ]
    names = await resolve_names(targets, None, resolver=resolver)
    inspector = FakeInspector([_task(i) for i in (1, 2, 3)], mode="vip")
    found = _ids(_facts(_three_healthy(), inspector, names=names))
    assert "agent_name_not_a_task" not in found and "agent_name_fronts_several" not in found
    gone, slow = found["agent_name_unresolved"]
    assert gone.severity == "critical" and "does not resolve" in gone.title
    assert gone.evidence == {
        "name": "chorus",
        "configured_as": "http://chorus:8080",
        "error": "gaierror: [Errno -2] Name or service not known",
    }
    assert slow.evidence["error"] == "no answer within 0.05 s"
    assert "WHOOSH_DISCOVERY=swarm" in gone.fix


def test_an_agent_on_a_misspelt_topic() -> None:
    statuses = _three_healthy()
    statuses[0] = _healthy(
        "http://10.231.0.11:8080",
        PEERS[0],
        "10.231.0.11",
        name="old-build",
        gossipsub_topics=["chorus/coordination/v1", "hmmm/meta-discussion/v1"],
    )
    (f,) = _ids(_facts(statuses, None))["topic_near_miss"]
    assert f.severity == "warning"
    assert (f.evidence["topic"], f.evidence["known_topic"]) == (
        "chorus/coordination/v1",
        "CHORUS/coordination/v1",
    )
    assert f.evidence["differs_by"] == ["case"]
    assert [a["name"] for a in f.evidence["agents"]] == ["old-build"]


def test_unknown_agent_service_and_broken_discovery() -> None:
    class NoAgents(FakeInspector):
        def services(self) -> list[dict]:
            return [{"ID": "w", "Spec": {"Name": "CHORUS_whoosh"}}]

    found = _ids(_facts([], NoAgents([]), error="no swarm service named 'chorus'", expected=None))
    (f,) = found["agent_service_not_found"]
    assert f.evidence["services"] == ["CHORUS_whoosh"]
    assert [x.id for x in diagnose(_facts([], None, error="no such host", expected=None))] == [
        "discovery_failed"
    ]
    assert not any(
        at_least(x.severity, "warning") for x in diagnose(_facts(_three_healthy(), None))
    )


# -- the closed mesh ---------------------------------------------------------------------
def _refused(url: str, peer: str, reason: str, detail: str = "why") -> AgentStatus:
    host = url.split("//")[1].split(":")[0]
    return AgentStatus(
        AgentTarget(url, host, host),
        "unreachable",
        f"record_{reason}",
        detail,
        health=AgentHealth(peer_id=peer),
        record=RecordCheck(False, reason, detail),
    )


def test_impostors_and_answers_without_a_valid_record_are_named_apart() -> None:
    statuses = [
        *_three_healthy(),
        _refused("http://10.231.0.66:8080", PEERS[0], "replayed", "names 10.231.0.11"),
        _refused("http://10.231.0.67:8080", PEERS[1], "bad_signature"),
        _refused("http://10.231.0.68:8080", PEERS[2], "missing", "no peer_record"),
    ]
    found = _ids(_facts(statuses, None, expected=6))
    (impostors,) = found["peer_id_unproven"]
    assert impostors.severity == "critical"
    assert [(h["url"], h["reason"]) for h in impostors.evidence["hosts"]] == [
        ("http://10.231.0.66:8080", "replayed"),
        ("http://10.231.0.67:8080", "bad_signature"),
    ]
    assert impostors.evidence["hosts"][0]["peer_id"] == PEERS[0]
    (unsigned,) = found["health_unsigned"]
    assert unsigned.severity == "warning"
    assert [(a["url"], a["reason"], a["listed"]) for a in unsigned.evidence["agents"]] == [
        ("http://10.231.0.68:8080", "missing", False)
    ]


def test_an_agent_listed_without_a_record_is_named() -> None:
    statuses = _three_healthy()
    statuses[1] = _healthy("http://10.231.0.12:8080", PEERS[1], "10.231.0.12", peer_record=None)
    assert statuses[1].state == "healthy" and statuses[1].signed is False
    (f,) = _ids(_facts(statuses, None))["health_unsigned"]
    assert [(a["peer_id"], a["listed"]) for a in f.evidence["agents"]] == [(PEERS[1], True)]


def test_an_agent_without_the_private_network_key_is_an_open_mesh() -> None:
    statuses = _three_healthy()
    statuses[2] = _healthy(
        "http://10.231.0.13:8080", PEERS[2], "10.231.0.13", name="open-one", private_network=False
    )
    (f,) = _ids(_facts(statuses, None))["open_mesh"]
    assert [h["name"] for h in f.evidence["hosts"]] == ["open-one"]
    assert "AGENT_PNET_KEY_FILE" in f.fix


def test_recent_private_network_refusals_name_the_host_and_who_knocked() -> None:
    now = NOW.timestamp()
    knocks = [
        {"at": now - 5, "direction": "inbound", "reason": "wrong_key", "remote": "10.9.0.7:4001"},
        {"at": now - 4, "direction": "inbound", "reason": "wrong_key", "remote": "10.9.0.7:4002"},
        {"at": now - 3, "direction": "inbound", "reason": "closed", "remote": "10.9.0.8:1"},
        {"at": now - 3600, "direction": "inbound", "reason": "no_key", "remote": "10.9.0.9:1"},
    ]
    statuses = _three_healthy()
    statuses[0] = _healthy(
        "http://10.231.0.11:8080", PEERS[0], "10.231.0.11", name="a1", pnet_refused_recent=knocks
    )
    facts = replace(_facts(statuses, None), now=now)
    (f,) = _ids(facts)["pnet_refused"]
    (row,) = f.evidence["hosts"]
    # Recent and meaningful only: an hour-old knock and a closed probe are not a finding.
    assert row["name"] == "a1" and row["refused"] == {"inbound/wrong_key": 2}
    assert row["remotes"] == ["10.9.0.7"] and f.evidence["remotes"] == ["10.9.0.7"]
    assert "10.9.0.7" in f.fix
    # An hour later nothing is left.
    assert "pnet_refused" not in _ids(replace(facts, now=now + 3600))


def test_a_peer_graylisted_by_agents_is_named_with_who_graylists_it() -> None:
    junk = "12D3KooWJunkJunkJunkJunkJunkJunkJunkJunkJunkJunkJunk"
    statuses = _three_healthy()
    statuses[0] = _healthy(
        "http://10.231.0.11:8080", PEERS[0], "10.231.0.11", name="a1",
        graylisted_peers=[junk], gossip_rejected={"invalid_json": 40},
    )  # fmt: skip
    (f,) = _ids(_facts(statuses, None))["peer_graylisted"]
    assert f.evidence["peers"] == [
        {"peer_id": junk, "graylisted_by": [{"name": "a1", "url": "http://10.231.0.11:8080",
                                              "peer_id": PEERS[0]}]}
    ]  # fmt: skip
    assert f.evidence["rejected_by_reason"] == {"invalid_json": 40}
