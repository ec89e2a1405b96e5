"""A host vanishes (no FIN, no RST: packets just stop) and its agent comes back on another
address with the same key, as Docker Swarm reschedules a slot of a powered-off node: the
monitor must hear it again, the agents must mesh with it, and the connection to the
vanished host must be closed and counted, not kept as "connected" for the ~15 minutes TCP
takes to give up.

The vanishing is iptables on loopback: while it runs, agent X's process (its own group
ID) marks every connection it sends on (CONNMARK); at the loss, every packet of a marked
connection and every packet to or from X's address is dropped in OUTPUT, which on
loopback sees both directions, so the FIN/RST of the killed process and the kernel's RSTs
for its closed sockets never arrive. Needs root and iptables; under
CHORUS_REQUIRE_ENGINE=1 (`make test`) a machine without them fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshcommon.topics import COORDINATION
from meshlocal import LocalMesh, MeshLayout

from .firewall import iptables, output_chain, require_iptables

pytestmark = pytest.mark.integration

N = 3
X = 3  # the agent whose host vanishes
X_MOVED = 13  # the index of the address it comes back on
GID_X = 64_201
MARK = "0x4e/0xff"
CHAIN = "CHORUS_TEST_NODELOSS"
# Marks every connection agent X's process sends on (from before it starts) ...
MARK_X = ("-m", "owner", "--gid-owner", str(GID_X), "-j", "CONNMARK", "--set-mark", MARK)
# ... so that, at the loss, every packet of those connections can be dropped.
DROP_MARKED = ("-m", "connmark", "--mark", MARK, "-j", "DROP")
LAYOUT = MeshLayout(
    agents=N,
    agent_net="127.0.110",
    whoosh_ip="127.0.111.2",
    monitor_ip="127.0.111.3",
    broadcast_interval_s=2.0,
)
STALE_METRIC = "_stale_connections_closed_total"
GRACE_S = 21.0  # py-libp2p 0.8.1 ConnectionConfig.grace_period (20 s), and a margin
# What every agent runs with: pings as often as the monitor's (each round, 2 s).
AGENT_ENV = {"AGENT_PING_INTERVAL_S": "2"}


def _name(i: int) -> str:
    return f"agent-{i:02d}"


def _vanish(ip: str) -> None:
    """From now on nothing of X's connections or address gets through, either way."""
    iptables("-A", CHAIN, *DROP_MARKED)
    iptables("-A", CHAIN, "-d", ip, "-j", "DROP")
    iptables("-A", CHAIN, "-s", ip, "-j", "DROP")


def _peers(mesh: LocalMesh) -> dict[str, dict[str, Any]]:
    body = mesh.get_json(f"{mesh.layout.monitor_url}/api/v1/peers")
    return {p["name"]: p for p in body["peers"]}


def _heard_since(mesh: LocalMesh, name: str, since: float) -> bool:
    last = _peers(mesh).get(name, {}).get("last_heard")
    return last is not None and last > since


def _agent_peers(mesh: LocalMesh, url: str) -> set[str]:
    return set(mesh.get_json(f"{url}/api/health")["peers"])


def _age_to(mesh: LocalMesh, url: str, peer_id: str) -> float:
    """Age in seconds of the youngest connection from the agent at ``url`` to ``peer_id``
    (0 when there is none)."""
    conns = mesh.get_json(f"{url}/api/v1/mesh")["connections"]
    ages = [c["age_s"] or 0.0 for c in conns if c["peer_id"] == peer_id]
    return min(ages) if ages else 0.0


def _agent_id(mesh: LocalMesh, url: str) -> str:
    return str(mesh.get_json(f"{url}/api/health")["peer_id"])


def _meshed(mesh: LocalMesh, url: str, peer_id: str) -> bool:
    """The node at ``url`` has ``peer_id`` in its coordination mesh and as a subscriber."""
    topic = mesh.get_json(f"{url}/api/v1/mesh")["topics"][COORDINATION]
    return peer_id in topic["mesh"] and peer_id in topic["subscribers"]


def _metric(mesh: LocalMesh, url: str, name: str) -> dict[str, float]:
    """Every sample at ``url``/metrics of the metric named ``*name`` (any service
    prefix): the sample's name and labels -> value."""
    body = httpx.get(f"{url}/metrics", timeout=2.0).text
    out: dict[str, float] = {}
    for line in body.splitlines():
        if name in line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def lmesh(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[LocalMesh]:
    require_iptables("node-loss", CHAIN, MARK_X, DROP_MARKED)
    moved_url = LAYOUT.agent_url(X_MOVED)
    static = ",".join([*(LAYOUT.agent_url(i) for i in range(1, N + 1)), moved_url])
    mesh = LocalMesh(
        LAYOUT,
        run_dir=tmp_path,
        extra_env={
            "whoosh": {"WHOOSH_STATIC_AGENTS": static},
            **{_name(i): dict(AGENT_ENV) for i in range(1, N + 1)},
        },
    )
    mesh.build()
    mesh.service(_name(X)).gid = GID_X
    with output_chain(CHAIN, MARK_X):
        try:
            mesh.start()
            yield mesh
        finally:
            mesh.stop()
            if request.session.testsfailed:
                print(f"run dir: {mesh.run_dir}\n{mesh.log_tail(40)}")


def test_vanished_host_agent_back_elsewhere_is_heard_again(lmesh: LocalMesh) -> None:
    mesh = lmesh
    started = time.monotonic()
    names = [_name(i) for i in range(1, N + 1)]
    up = mesh.wait_for(
        lambda: all(_heard_since(mesh, n, 0) and _peers(mesh)[n]["connected"] for n in names),
        timeout=90,
        what=f"monitor connected to and hearing {N}/{N}",
    )
    x_id = str(mesh.get_json(f"{LAYOUT.agent_url(X)}/api/health")["peer_id"])
    others = [LAYOUT.agent_url(i) for i in range(1, N + 1) if i != X]
    mesh.wait_for(
        lambda: all(x_id in _agent_peers(mesh, u) for u in others),
        timeout=60,
        what="every agent connected to X",
    )
    # As when Swarm reschedules a slot (which takes longer than this): the connections to
    # X are past py-libp2p's grace period, so the swarm itself trims the old connection
    # when X's new one comes (the grace-period case is in meshcommon's test_liveness).
    aged = mesh.wait_for(
        lambda: all(_age_to(mesh, u, x_id) > GRACE_S for u in others),
        timeout=60,
        interval=1,
        what=f"the agents' connections to X older than {GRACE_S:g} s",
    )

    _vanish(LAYOUT.agent_ip(X))
    lost = time.time()
    mesh.service(_name(X)).kill()  # its FIN/RST are dropped: the host is simply gone
    mesh.service(_name(X)).wait_or_kill(10)
    moved = mesh.agent_process(
        X_MOVED,
        AGENT_NAME=_name(X),
        AGENT_IDENTITY_PATH=str(mesh.run_dir / f"{_name(X)}.key"),
        **AGENT_ENV,
    )
    mesh.processes.append(moved)
    moved.start()

    heard = mesh.wait_for(
        lambda: _heard_since(mesh, _name(X), lost + 1),
        timeout=60,
        interval=1,
        what=f"monitor to hear {_name(X)} again at its new address",
    )
    # The agents mesh with X both ways: each has it in its GossipSub mesh and knows its
    # subscriptions (sent on the new connection), and X has them in its own mesh.
    meshed = mesh.wait_for(
        lambda: (
            all(_meshed(mesh, u, x_id) for u in others)
            and all(_meshed(mesh, moved.url, _agent_id(mesh, u)) for u in others)
        ),
        timeout=30,
        what="every agent meshed with X at its new address, both ways",
    )
    # The connections to the vanished host were closed and counted: the agents' when X's
    # new connection came (replaced), the monitor's, which X never dials, once its pings
    # failed in a row; then the monitor dials X at the address WHOOSH now lists.
    closed = mesh.wait_for(
        lambda: sum(_metric(mesh, LAYOUT.monitor_url, STALE_METRIC).values()) >= 1,
        timeout=45,
        what="the monitor to close its connection to the vanished host",
    )
    mesh.wait_for(
        lambda: _peers(mesh)[_name(X)]["connected"],
        timeout=30,
        what=f"the monitor to connect to {_name(X)} again",
    )
    since = time.time()
    mesh.wait_for(
        lambda: _heard_since(mesh, _name(X), since),
        timeout=30,
        what=f"the monitor to keep hearing {_name(X)}",
    )
    stale = {url: _metric(mesh, url, STALE_METRIC) for url in (LAYOUT.monitor_url, *others)}
    print(
        f"\nstale connections closed: {stale}"
        f"\nnode loss: mesh up {up:.1f}s, connections aged +{aged:.1f}s; X heard again "
        f"{heard:.1f}s after the loss, agents "
        f"meshed +{meshed:.1f}s; the monitor's dead connection closed +{closed:.1f}s; "
        f"whole test {time.monotonic() - started:.1f}s"
    )
