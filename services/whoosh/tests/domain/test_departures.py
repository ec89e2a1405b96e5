"""Departures: which agents left on purpose (scale-down, drain, update), which were lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from whoosh_testkit import PEER_A, PEER_B, PEER_C

from meshcommon.models import AgentHealth
from whoosh.domain.agent_status import AgentStatus
from whoosh.domain.departures import Departures, departure_reason
from whoosh.domain.targets import AgentTarget, StoppedTask

T0 = datetime(2025, 1, 1, tzinfo=UTC)

# A task Swarm stopped because of an update: its node is fine, the spec moved on.
UPDATED = StoppedTask(
    task_id="t1",
    slot=3,
    slot_live=True,
    desired_state="shutdown",
    state="shutdown",
    node_ready=True,
    node_draining=False,
    outdated_spec=True,
    rolling_back=False,
)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, "updated"),
        ({"rolling_back": True}, "rolled_back"),
        # Scale-down: Swarm says "remove", or no task holds the slot any more.
        ({"outdated_spec": False, "desired_state": "remove"}, "scaled_down"),
        ({"outdated_spec": False, "slot_live": False}, "scaled_down"),
        # Still running on its node: the manager just asked it to stop.
        ({"outdated_spec": False, "node_draining": True, "state": "running"}, "node_drained"),
        # Failures stay failures, whatever else changed at the same time.
        ({"state": "failed"}, None),
        ({"state": "complete"}, None),  # exited by itself
        ({"state": "rejected", "desired_state": "remove"}, None),
        ({"state": "running", "node_ready": False}, None),  # a lost node
        ({"node_ready": False, "node_draining": True}, None),
        # Stopped for a reason nobody recognises: not assumed harmless.
        ({"outdated_spec": False}, None),
        # A global service has no slots: only "remove" says scaled down.
        ({"outdated_spec": False, "slot": None, "slot_live": False}, None),
    ],
)
def test_departure_reason(change: dict[str, object], reason: str | None) -> None:
    assert departure_reason(replace(UPDATED, **change)) == reason  # type: ignore[arg-type]


def status(task_id: str, peer_id: str | None, name: str = "") -> AgentStatus:
    ip = f"10.0.13.{len(task_id) + ord(task_id[-1]) % 200}"
    target = AgentTarget(f"http://{ip}:8080", f"CHORUS_chorus.{task_id}", ip, task_id=task_id)
    if peer_id is None:
        return AgentStatus(target, "unreachable", "connect_error")
    return AgentStatus(target, "healthy", health=AgentHealth(peer_id=peer_id, name=name))


def stopped(task_id: str, **change: object) -> StoppedTask:
    return replace(UPDATED, task_id=task_id, **change)  # type: ignore[arg-type]


def test_scaled_down_peers_are_left_with_their_names_and_reason() -> None:
    d = Departures(keep_s=600)
    d.observe([status("t1", PEER_A, "agent-1"), status("t2", PEER_B, "agent-2")], [], T0)
    gone = [stopped("t2", desired_state="remove", outdated_spec=False, slot=2)]
    new = d.observe([status("t1", PEER_A, "agent-1")], gone, T0 + timedelta(seconds=5))
    assert [(p.peer_id, p.name, p.reason) for p in new] == [(PEER_B, "agent-2", "scaled_down")]
    assert new[0].at == T0 + timedelta(seconds=5)
    assert d.left == tuple(new)
    # Judged once: the same stopped task in the next round adds nothing.
    assert d.observe([status("t1", PEER_A)], gone, T0 + timedelta(seconds=6)) == []
    assert [p.peer_id for p in d.left] == [PEER_B]


def test_a_crash_is_never_left() -> None:
    d = Departures(keep_s=600)
    d.observe([status("t1", PEER_A)], [], T0)
    assert d.observe([], [stopped("t1", state="failed")], T0) == []
    assert d.left == ()


def test_a_task_never_seen_healthy_has_no_peer_to_report() -> None:
    d = Departures(keep_s=600)
    d.observe([status("t1", None)], [], T0)  # it never answered
    assert d.observe([], [stopped("t1")], T0) == []


def test_a_slot_identity_back_in_its_replacement_is_no_longer_left() -> None:
    # Rolling update with per-slot identities: the old task stops (left: updated), the new
    # task of the same slot answers with the same peer ID.
    d = Departures(keep_s=600)
    d.observe([status("old", PEER_A, "CHORUS_chorus-3")], [], T0)
    assert [p.reason for p in d.observe([], [stopped("old")], T0)] == ["updated"]
    d.observe([status("new", PEER_A, "CHORUS_chorus-3")], [stopped("old")], T0)
    assert d.left == ()


def test_replacement_already_answering_means_nobody_left() -> None:
    d = Departures(keep_s=600)
    d.observe([status("old", PEER_A)], [], T0)
    # Same round: the old task is stopped and the slot's new task answers with its peer ID.
    assert d.observe([status("new", PEER_A)], [stopped("old")], T0) == []
    assert d.left == ()


def test_left_entries_expire_and_stay_bounded() -> None:
    d = Departures(keep_s=60, max_entries=2)
    peers = {"t1": PEER_A, "t2": PEER_B, "t3": PEER_C}
    d.observe([status(t, p) for t, p in peers.items()], [], T0)
    for i in range(1, 4):  # one more task stopped per round, the others still running
        running = [status(t, p) for t, p in list(peers.items())[i:]]
        gone = [stopped(t) for t in list(peers)[:i]]
        d.observe(running, gone, T0 + timedelta(seconds=i))
    assert [p.peer_id for p in d.left] == [PEER_C, PEER_B]  # the most recent two
    everyone_stopped = [stopped(t) for t in peers]
    d.observe([], everyone_stopped, T0 + timedelta(seconds=62.5))
    assert [p.peer_id for p in d.left] == [PEER_C]
    d.observe([], everyone_stopped, T0 + timedelta(seconds=64))
    assert d.left == ()


def test_tasks_gone_from_swarm_history_are_forgotten() -> None:
    d = Departures(keep_s=600)
    d.observe([status("t1", PEER_A)], [], T0)
    d.observe([], [], T0)  # t1 is neither running nor stopped: Swarm pruned it
    assert d.observe([], [stopped("t1")], T0) == []


def test_a_task_deleted_with_its_slot_was_scaled_down() -> None:
    # Swarm deletes scaled-down tasks seconds after they stop: a round may never see them
    # stopped. Gone, and its slot with it: scaled down.
    def slot_status(task_id: str, peer_id: str, slot: int) -> AgentStatus:
        t = status(task_id, peer_id).target
        target = replace(t, service="CHORUS_chorus", slot=slot)
        return replace(status(task_id, peer_id), target=target)

    d = Departures(keep_s=600)
    d.observe([slot_status("t1", PEER_A, 9), slot_status("t2", PEER_B, 2)], [], T0)
    # Swarm kept slot 9 and dropped slot 2 (it picks by placement, not by number).
    new = d.observe([slot_status("t1", PEER_A, 9)], [], T0, {"CHORUS_chorus": frozenset({9})})
    assert [(p.peer_id, p.reason) for p in new] == [(PEER_B, "scaled_down")]
    # Deleted while its slot lives on (a newer task holds it): not left.
    d.observe([slot_status("t1", PEER_A, 9), slot_status("t3", PEER_C, 2)], [], T0)
    live = {"CHORUS_chorus": frozenset({2, 9})}
    assert d.observe([slot_status("t1", PEER_A, 9)], [], T0, live) == []
