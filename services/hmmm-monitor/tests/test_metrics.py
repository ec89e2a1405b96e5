"""The monitor's per-peer series stay bounded by the expected set, and the counters alerts
use exist from the start."""

from __future__ import annotations

from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.limits import MAX_MESSAGE_TYPE_LABELS


def heard(m: MonitorMetrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["peer_id"], s.labels["name"]): s.value
        for family in m.registry.collect()
        if family.name == "hmmm_peer_heard"
        for s in family.samples
    }


def test_peer_heard_has_one_series_per_expected_peer_and_forgets_the_others() -> None:
    m = MonitorMetrics()
    m.set_peer_heard({"p1": "agent-01", "p2": "agent-02"}, heard={"p1", "unexpected"})
    assert heard(m) == {("p1", "agent-01"): 1, ("p2", "agent-02"): 0}
    # p1 forgotten, p2 renamed and heard, p3 new: no series left behind for p1 or the old name.
    m.set_peer_heard({"p2": "agent-02b", "p3": "agent-03"}, heard={"p2"})
    assert heard(m) == {("p2", "agent-02b"): 1, ("p3", "agent-03"): 0}
    m.set_peer_heard({}, heard=set())
    assert heard(m) == {}


def test_message_types_a_peer_invents_do_not_grow_the_series() -> None:
    m = MonitorMetrics()
    for i in range(MAX_MESSAGE_TYPE_LABELS + 50):
        m.count_received("CHORUS/coordination/v1", f"type-{i}")
    types = {
        s.labels["type"]
        for family in m.registry.collect()
        if family.name == "hmmm_messages_received"
        for s in family.samples
        if s.name == "hmmm_messages_received_total"
    }
    assert len(types) == MAX_MESSAGE_TYPE_LABELS + 1
    assert "other" in types
    total = m.registry.get_sample_value(
        "hmmm_messages_received_total", {"topic": "CHORUS/coordination/v1", "type": "other"}
    )
    assert total == 50


def test_rejections_and_dial_failures_start_at_zero() -> None:
    m = MonitorMetrics()
    get = m.registry.get_sample_value
    assert get("hmmm_messages_rejected_total", {"reason": "invalid_json"}) == 0
    assert get("hmmm_dial_failures_total", {"reason": "connection_refused"}) == 0
    assert get("hmmm_dial_failures_total", {"reason": "no_dialable_multiaddr"}) == 0
    assert get("hmmm_bootstrap_fetch_total", {"result": "unreachable"}) == 0
