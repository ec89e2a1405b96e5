"""The libp2p private network (meshcommon.p2p.pnet): XSalsa20 against published vectors,
and real py-libp2p nodes on loopback: the same key connects and gossips; another key or
none is refused before multistream, named and counted on both sides; a rotating listener
takes the old and the new key."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from meshcommon.p2p.node import MeshNode
from meshcommon.p2p.pnet import MSS_HEADER, hsalsa20, xsalsa20
from meshcommon.p2p.types import NO_OVERRIDES, NodeConfig, P2POverrides, ReceivedMessage
from meshcommon.topics import COORDINATION
from meshcommon.waiting import wait_until_async

HOST = "127.0.90.1"
KEY_A, KEY_B = os.urandom(32), os.urandom(32)

# NaCl / libsodium (tests core1, core2, stream; "Cryptography in NaCl", section 9-11).
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
FIRSTKEY = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
SECONDKEY = bytes.fromhex("dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4")
STREAM_4MIB_SHA256 = "662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2"


def test_hsalsa20_matches_the_nacl_vectors() -> None:
    assert hsalsa20(SHARED, bytes(16)) == FIRSTKEY
    assert hsalsa20(FIRSTKEY, NONCE[:16]) == SECONDKEY


def test_xsalsa20_keystream_matches_nacl() -> None:
    stream = xsalsa20(FIRSTKEY, NONCE).encrypt(bytes(4 * 1024 * 1024))
    assert hashlib.sha256(stream).hexdigest() == STREAM_4MIB_SHA256
    # In pieces, as frames go by: the same stream.
    cipher = xsalsa20(FIRSTKEY, NONCE)
    pieces = b"".join(cipher.encrypt(bytes(n)) for n in (1, 63, 64, 65, 1000, 3))
    assert pieces == stream[: len(pieces)]


def test_xsalsa20_matches_libsodium_secretbox() -> None:
    """Cross-check against libsodium itself: secretbox is XSalsa20 (the first 32 bytes of
    keystream keying Poly1305) + Poly1305."""
    secret = pytest.importorskip("nacl.secret")
    message = os.urandom(1000)
    sealed = secret.SecretBox(KEY_A).encrypt(message, NONCE).ciphertext[16:]
    keystream = xsalsa20(KEY_A, NONCE).encrypt(bytes(32 + len(message)))[32:]
    assert bytes(a ^ b for a, b in zip(message, keystream, strict=True)) == sealed


# -- real nodes -----------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Peer:
    def __init__(self, *keys: bytes, overrides: P2POverrides | None = None) -> None:
        self.port = free_port()
        self.inbox: list[bytes] = []
        cfg = NodeConfig(
            HOST,
            self.port,
            pnet_keys=keys,
            pnet_accept_budget_s=1.0,
            overrides=overrides or P2POverrides(),
        )
        self.node = MeshNode(cfg, on_message=self._received)

    def _received(self, msg: ReceivedMessage) -> None:
        self.inbox.append(msg.data)

    @property
    def addr(self) -> str:
        return f"/ip4/{HOST}/tcp/{self.port}/p2p/{self.node.peer_id}"

    def refused(self) -> dict[str, dict[str, int]]:
        return self.node.counters.pnet_refused_table()


@asynccontextmanager
async def running(*peers: Peer) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        for p in peers:
            await nursery.start(p.node.serve)
        yield
        nursery.cancel_scope.cancel()


async def wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    await wait_until_async(condition, within_s=15, interval=0.02, what=what)


async def gossip(sender: Peer, receiver: Peer, data: bytes) -> None:
    async def meshed() -> bool:
        snap = await sender.node.snapshot()
        return receiver.node.peer_id in snap.mesh_peers.get(COORDINATION, ())

    await wait_for(meshed, "the receiver in the sender's mesh")
    await sender.node.publish(COORDINATION, data)

    async def arrived() -> bool:
        return data in receiver.inbox

    await wait_for(arrived, "the message")


@pytest.mark.anyio
@pytest.mark.parametrize("overrides", ["all", "none"], ids=["buffered-tcp", "upstream-tcp"])
async def test_same_key_connects_and_gossips_both_ways(
    overrides: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fix = P2POverrides.parse(overrides)
    a, b = Peer(KEY_A, overrides=fix), Peer(KEY_A, overrides=NO_OVERRIDES)
    async with running(a, b):
        outcome = await a.node.connect(b.node.peer_id, [b.addr])
        assert outcome.connected, outcome.failures
        await gossip(a, b, b"a to b")
        await gossip(b, a, b"b to a" * 10_000)  # several frames
        assert 0 < await a.node.ping(b.node.peer_id) < 5000
        # prove_key dials through the same transport: it works under the key too.
        proof = await b.node.prove_key(a.node.peer_id, a.addr)
        assert proof.holds_key is True, proof
        snap = await a.node.snapshot()
        assert snap.private_network and snap.pnet_refused == {}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "private network on" in logged
    assert KEY_A.hex() not in logged and KEY_A.hex() not in repr(a.node.config)


@pytest.mark.anyio
async def test_wrong_key_is_refused_and_counted_on_both_sides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener, intruder = Peer(KEY_A), Peer(KEY_B)
    async with running(listener, intruder):
        outcome = await intruder.node.connect(listener.node.peer_id, [listener.addr])
        assert not outcome.connected
        # Our listener closes at once: the dialer sees the refusal as a close.
        assert outcome.failures[-1].reason == "pnet_closed", outcome.failures
        # Each attempt of the dial (the swarm retries once) is refused and counted.
        attempts = listener.refused()["inbound"]["wrong_key"]
        assert listener.refused() == {"inbound": {"wrong_key": attempts}}
        assert intruder.refused() == {"outbound": {"closed": attempts}}
        assert listener.node._host.get_connected_peers() == []
        assert intruder.node._host.get_connected_peers() == []
    warned = [r.getMessage() for r in caplog.records if "refused an inbound" in r.getMessage()]
    assert warned and "wrong_key" in warned[0]
    assert re.search(r"from 127\.\d+\.\d+\.\d+:\d+", warned[0])  # who it was


@pytest.mark.anyio
async def test_a_peer_without_a_private_network_is_refused_both_ways() -> None:
    keyed, open_peer = Peer(KEY_A), Peer()
    async with running(keyed, open_peer):
        # An open node dials a keyed one: multistream in clear, named at the listener.
        outcome = await open_peer.node.connect(keyed.node.peer_id, [keyed.addr])
        assert not outcome.connected
        assert set(keyed.refused()) == {"inbound"}
        assert set(keyed.refused()["inbound"]) == {"no_key"}
        # The keyed node dials the open one: refused on its side (the open listener
        # cannot read our nonce and hangs up, or answers multistream in clear).
        outcome = await keyed.node.connect(open_peer.node.peer_id, [open_peer.addr])
        assert not outcome.connected
        assert outcome.failures[-1].reason in ("pnet_closed", "pnet_no_key"), outcome.failures
        assert set(keyed.refused()["outbound"]) <= {"closed", "no_key"}
        assert open_peer.node._host.get_connected_peers() == []


@pytest.mark.anyio
async def test_raw_sockets_that_say_nothing_or_hang_up_are_named() -> None:
    keyed = Peer(KEY_A)
    async with running(keyed):
        silent = await trio.open_tcp_stream(HOST, keyed.port)

        async def timed_out() -> bool:
            return keyed.refused().get("inbound", {}).get("timeout", 0) == 1

        await wait_for(timed_out, "a timeout refusal")  # budget 1 s
        await silent.aclose()
        short = await trio.open_tcp_stream(HOST, keyed.port)
        await short.send_all(os.urandom(10))
        await short.aclose()

        async def closed() -> bool:
            return keyed.refused().get("inbound", {}).get("closed", 0) == 1

        await wait_for(closed, "a closed refusal")
        # A well-formed greeting under another key: wrong_key, and the socket is closed.
        other = await trio.open_tcp_stream(HOST, keyed.port)
        nonce = os.urandom(24)
        await other.send_all(nonce + xsalsa20(KEY_B, nonce).encrypt(MSS_HEADER))
        got = b""
        with trio.fail_after(5):
            while chunk := await other.receive_some(100):
                got += chunk
        assert len(got) == 24  # its nonce (sent at once, for js-libp2p), then closed
        assert keyed.refused() == {"inbound": {"timeout": 1, "closed": 1, "wrong_key": 1}}


@pytest.mark.anyio
async def test_a_rotating_listener_takes_the_old_and_the_new_key() -> None:
    """Phase 1-2 of a rotation: the listener dials with the new key and accepts the old
    one too; a dialer with either connects and gossips, each answered in its own key."""
    old, new = KEY_A, KEY_B
    rotating = Peer(new, old)
    still_old, already_new = Peer(old), Peer(new)
    async with running(rotating, still_old, already_new):
        for dialer in (still_old, already_new):
            outcome = await dialer.node.connect(rotating.node.peer_id, [rotating.addr])
            assert outcome.connected, outcome.failures
            await gossip(dialer, rotating, f"from {dialer.port}".encode())
            await gossip(rotating, dialer, f"to {dialer.port}".encode())
        assert rotating.refused() == {}
        # Its own dials use the new key only: an old-key listener refuses them.
        outcome = await rotating.node.connect(still_old.node.peer_id, [still_old.addr])
        assert outcome.connected and outcome.already_connected
        lone_old = Peer(old)
        async with running(lone_old):
            outcome = await rotating.node.connect(lone_old.node.peer_id, [lone_old.addr])
            assert not outcome.connected
            assert set(lone_old.refused()["inbound"]) == {"wrong_key"}
