"""Every upstream function or class meshcommon's overrides copy or patch (and the private
names the copies rely on) is fingerprinted in ``overrides.UPSTREAM``: on another
py-libp2p the test fails naming what changed and which overrides to re-read."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("libp2p")

from meshcommon.p2p import overrides


def test_upstream_sources_are_the_ones_the_overrides_were_written_against() -> None:
    changes = overrides.changed()
    assert not changes, overrides.report(changes)


def test_the_table_holds_exactly_the_names_the_registry_uses() -> None:
    names = set(overrides.upstream_names())
    assert set(overrides.UPSTREAM) == names
    for private in (
        "libp2p.pubsub.gossipsub:GossipSub._get_peers_to_send",
        "libp2p.pubsub.gossipsub:GossipSub.__init__",  # _pending_messages
        "libp2p.stream_muxer.rw_lock:ReadWriteLock",  # rw_lock._writer_lock
        "libp2p.pubsub.rpc_queue:RpcQueue",  # queue._queue
    ):
        assert private in names


def test_a_changed_upstream_function_is_named_with_the_overrides_to_re_read(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """As if py-libp2p had edited one copied function: the check names it, and the
    override (flag and module) whose code copies it."""
    from libp2p.pubsub.gossipsub import GossipSub

    edited = GossipSub._get_peers_to_send
    real = inspect.getsource

    def getsource(obj):  # type: ignore[no-untyped-def]
        text = real(obj)
        return text.replace("return", "return  # changed upstream", 1) if obj is edited else text

    monkeypatch.setattr(inspect, "getsource", getsource)
    changes = overrides.changed()
    assert list(changes) == ["libp2p.pubsub.gossipsub:GossipSub._get_peers_to_send"]
    message = overrides.report(changes)
    print(message)
    assert "GossipSub._get_peers_to_send" in message
    assert "noforward (pubsub.MeshGossipSub.publish)" in message


def test_a_vanished_upstream_name_is_reported_too(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from libp2p.pubsub import gossipsub

    monkeypatch.delattr(gossipsub.GossipSub, "_prune_pending_messages")
    changes = overrides.changed()
    assert changes["libp2p.pubsub.gossipsub:GossipSub._prune_pending_messages"].startswith(
        "unreadable (AttributeError"
    )
