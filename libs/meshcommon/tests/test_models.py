from __future__ import annotations

import json
from datetime import UTC, datetime

from meshcommon.models import (
    AgentHealth,
    AvailabilityMessage,
    BootstrapPeer,
    BootstrapResponse,
    MonitorLogRecord,
)

PID = "12D3KooWK2dKochWng6FPRspTH4ZFqWyWob4A7UkWqrYG5AYxn5r"


def test_agent_health_parses_seed_minimal_health() -> None:
    seed_health = {
        "peer_id": PID,
        "multiaddrs": [f"/ip4/10.0.13.5/tcp/9000/p2p/{PID}"],
        "connected_peers": 3,
        "gossipsub_topics": ["CHORUS/coordination/v1", "hmmm/meta-discussion/v1"],
    }
    health = AgentHealth.model_validate(seed_health)
    assert health.peer_id == PID
    assert health.multiaddrs == seed_health["multiaddrs"]
    assert health.connected_peers == 3
    assert health.gossipsub_topics == seed_health["gossipsub_topics"]
    # Added fields default sensibly.
    assert health.name == ""
    assert health.status == "ready"
    assert health.peers == []


def test_agent_health_ignores_unknown_fields() -> None:
    health = AgentHealth.model_validate_json(
        json.dumps({"peer_id": PID, "future_field": {"x": 1}, "go_runtime": "1.22"})
    )
    assert health.peer_id == PID
    assert "future_field" not in health.model_dump()


def test_monitor_log_record_serialises_from_by_alias_and_round_trips() -> None:
    record = MonitorLogRecord.model_validate(
        {
            "timestamp": "2024-05-01T12:00:00Z",
            "topic": "CHORUS/coordination/v1",
            "from": PID,
            "type": "availability",
            "payload": {"node_id": "a1", "nested": [1, 2]},
        }
    )
    assert record.from_ == PID
    line = record.to_json_line()
    data = json.loads(line)
    assert data["from"] == PID
    assert "from_" not in data
    assert set(data) >= {"timestamp", "topic", "from", "type", "payload"}
    again = MonitorLogRecord.model_validate_json(line)
    assert again == record
    # populate_by_name: the Python name works too.
    by_name = MonitorLogRecord(
        timestamp=datetime(2024, 5, 1, tzinfo=UTC), topic="t", from_=PID, type="x"
    )
    assert json.loads(by_name.to_json_line())["from"] == PID


def test_availability_message_has_seed_fields() -> None:
    seed_fields = {
        "node_id",
        "available_for_work",
        "current_tasks",
        "max_tasks",
        "last_activity",
        "status",
        "timestamp",
    }
    assert seed_fields <= set(AvailabilityMessage.model_fields)
    msg = AvailabilityMessage(
        node_id="agent-1",
        available_for_work=True,
        current_tasks=0,
        max_tasks=3,
        last_activity=datetime(2024, 5, 1, tzinfo=UTC),
        status="ready",
    )
    dumped = json.loads(msg.model_dump_json())
    assert seed_fields <= set(dumped)
    assert dumped["type"] == "availability"
    assert msg.timestamp.tzinfo is not None
    assert AvailabilityMessage.model_validate_json(msg.model_dump_json()) == msg


def test_availability_from_seed_payload() -> None:
    # As a Go agent sends it: no `type`, RFC 3339 times, extra fields ignored.
    msg = AvailabilityMessage.model_validate(
        {
            "node_id": "chorus-agent-7",
            "available_for_work": False,
            "current_tasks": 2,
            "max_tasks": 2,
            "last_activity": "2024-05-01T11:59:00Z",
            "status": "busy",
            "timestamp": "2024-05-01T12:00:00Z",
            "unexpected": True,
        }
    )
    assert msg.type == "availability"
    assert msg.status == "busy"


def test_bootstrap_response_round_trip() -> None:
    peer = BootstrapPeer(
        peer_id=PID,
        name="agent-1",
        priority=1,
        multiaddr=f"/ip4/10.0.13.5/tcp/9000/p2p/{PID}",
        multiaddrs=[f"/ip4/10.0.13.5/tcp/9000/p2p/{PID}"],
    )
    resp = BootstrapResponse(bootstrap_peers=[peer], count=1)
    again = BootstrapResponse.model_validate_json(resp.model_dump_json())
    assert again == resp
    assert again.summary.missing == 0
