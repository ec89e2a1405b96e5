"""Real libp2p: a peer that advertises many addresses, or addresses that hang, costs one
dial its deadline; and the handshake tells a host that holds a peer's key from one that
only claims it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

pytest.importorskip("libp2p")

from meshcommon.limits import MAX_MULTIADDRS_PER_PEER, REASON_TOO_MANY_MULTIADDRS
from meshcommon.p2p import MeshNode, MeshRuntime, NodeConfig
from meshcommon.p2p.dial import REASON_DEADLINE
from meshcommon.waiting import wait_until_async

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def black_holes() -> Iterator[list[int]]:
    """Listeners that accept a TCP connection and never say a word: every libp2p
    handshake with them hangs until the dialler gives up."""
    stop = threading.Event()
    socks, held = [], []
    for _ in range(6):
        s = socket.socket()
        s.bind((HOST, 0))
        s.listen(64)
        s.settimeout(0.2)
        socks.append(s)

    def accept_all() -> None:
        while not stop.is_set():
            for s in socks:
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                held.append(conn)

    thread = threading.Thread(target=accept_all, daemon=True)
    thread.start()
    try:
        yield [s.getsockname()[1] for s in socks]
    finally:
        stop.set()
        thread.join(5)
        for c in held + socks:
            c.close()


async def _runtime(**config: float) -> MeshRuntime:
    runtime = MeshRuntime(MeshNode(NodeConfig(listen_host=HOST, port=free_port(), **config)))
    await runtime.start()
    return runtime


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MeshRuntime, MeshRuntime, MeshRuntime]]:
    """A dialler with short budgets, a real peer, and an impostor (another key)."""
    nodes = [
        await _runtime(dial_timeout_s=1.0, dial_deadline_s=2.5),
        await _runtime(),
        await _runtime(),
    ]
    try:
        yield nodes[0], nodes[1], nodes[2]
    finally:
        for node in nodes:
            await node.stop()


def _addr(runtime: MeshRuntime, peer_id: str | None = None) -> str:
    return f"/ip4/{HOST}/tcp/{runtime.node.config.port}/p2p/{peer_id or runtime.peer_id}"


@pytest.mark.anyio
async def test_hanging_addresses_cost_the_peer_deadline_not_their_number(pair, black_holes) -> None:
    dialler, real, _ = pair
    hanging = [f"/ip4/{HOST}/tcp/{port}/p2p/{real.peer_id}" for port in black_holes]
    started = time.monotonic()
    outcome = await dialler.connect(real.peer_id, [*hanging, _addr(real)])
    took = time.monotonic() - started
    # 6 hanging addresses at 1 s each would be 6 s; the peer's deadline is 2.5 s.
    assert not outcome.connected
    assert took < 5.0, took
    reasons = [f.reason for f in outcome.failures]
    assert reasons[-1] == REASON_DEADLINE and "not tried" in outcome.failures[-1].detail
    assert "timeout" in reasons, outcome.failures


@pytest.mark.anyio
async def test_only_the_first_addresses_of_a_long_list_are_tried(pair) -> None:
    dialler, real, _ = pair
    # Refused at once (nothing listens on port 1), then the real address: past the cap.
    refused = [f"/ip4/{HOST}/tcp/1/p2p/{real.peer_id}"] * (MAX_MULTIADDRS_PER_PEER + 10)
    outcome = await dialler.connect(real.peer_id, [*refused, _addr(real)])
    assert not outcome.connected
    assert outcome.failures[0].reason == REASON_TOO_MANY_MULTIADDRS
    assert len(outcome.failures) == 1 + MAX_MULTIADDRS_PER_PEER
    # Within the cap, the same real address connects.
    outcome = await dialler.connect(real.peer_id, [*refused[:3], _addr(real)])
    assert outcome.connected and outcome.multiaddr == _addr(real)


@pytest.mark.anyio
async def test_the_handshake_proves_who_holds_a_key(pair, black_holes) -> None:
    dialler, real, impostor = pair
    # The impostor's host, presented as the real peer: its key is not the real one.
    claimed = _addr(impostor, peer_id=real.peer_id)
    proof = await dialler.prove_key(real.peer_id, claimed)
    assert proof.holds_key is False and proof.reason == "peer_id_mismatch"
    assert impostor.peer_id in proof.detail  # the evidence: whose key it really holds
    assert proof.answered_by == impostor.peer_id
    assert (await dialler.prove_key(real.peer_id, _addr(real))).holds_key is True
    # Nothing proven either way: a host that never answers.
    silent = await dialler.prove_key(real.peer_id, f"/ip4/{HOST}/tcp/{black_holes[0]}")
    assert silent.holds_key is None and silent.reason == "timeout"

    # A proof works while connected to the real holder, and adds no connection.
    assert (await dialler.connect(real.peer_id, [_addr(real)])).connected
    again = await dialler.prove_key(real.peer_id, claimed)
    assert again.holds_key is False
    snap = await dialler.snapshot()
    assert impostor.peer_id not in snap.connected_peers
    assert real.peer_id in snap.connected_peers
    # ...and connecting "the real peer" through the impostor's address never succeeds.
    await real.call(real.node.disconnect, dialler.peer_id)

    async def disconnected() -> bool:
        return real.peer_id not in (await dialler.snapshot()).connected_peers

    await wait_until_async(disconnected, within_s=10, what="the real peer disconnected")
    outcome = await dialler.connect(real.peer_id, [claimed])
    assert not outcome.connected and outcome.failures[-1].reason == "peer_id_mismatch"
    assert outcome.failures[-1].answered_by == impostor.peer_id


@pytest.mark.anyio
async def test_a_snapshot_counts_the_trio_tasks(pair) -> None:
    dialler, _, _ = pair
    snap = await dialler.snapshot()
    assert snap.trio_tasks > 3  # the node's services, its listener, the portal
