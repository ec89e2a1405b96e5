"""The one door (meshcommon.p2p.overrides): every override is registered once with its
flag and installed only through ``apply``; each keeps the wire protocol against a stock
py-libp2p node, alone and all together; nothing is set process-wide from one node."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import trio

pytest.importorskip("libp2p")

from meshcommon.p2p import overrides
from meshcommon.p2p.types import NO_OVERRIDES, NodeConfig, P2POverrides

pytestmark = pytest.mark.anyio
NAMES = [f.name for f in fields(P2POverrides)]
SRC = Path(overrides.__file__).parent


@pytest.fixture
def anyio_backend() -> str:
    return "trio"  # MeshNode runs in trio


def test_every_flag_has_one_override_and_every_override_a_flag() -> None:
    flags = [o.flag for o in overrides.OVERRIDES]
    assert sorted(flags) == sorted(NAMES)
    for o in overrides.OVERRIDES:
        assert o.replaces and o.why and o.stage in overrides.STAGES
        assert all(":" in n or "." not in n for n in o.upstream()), o.flag


def test_nothing_outside_the_door_replaces_upstream_behaviour() -> None:
    """Run-time replacements (attribute swaps on libp2p objects, module globals) live in
    overrides.py, or in the override module its install function calls."""
    swaps = re.compile(
        r"(\.__class__\s*=|multiselect_client\s*=|muxer_multistream\s*=|retry_config\s*="
        r"|auto_connector\s*=|SUBSCRIPTION_CHANNEL_SIZE\s*=|_queue\.max_size\s*=)"
    )
    allowed = {
        "overrides.py": {"multiselect_client", "retry_config", "auto_connector"},
        "yamux.py": {"__class__", "muxer_multistream"},  # install_lean_yamux's work
        "pubsub.py": {"_queue.max_size"},  # send_rpc, with the outqueue override on
    }
    for path in sorted(SRC.glob("*.py")):
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            hit = swaps.search(code)
            if hit and not code.lstrip().startswith(('"', "'")):
                found = hit.group(1).rstrip("= ").lstrip(".")
                assert found in allowed.get(path.name, set()), f"{path.name}: {line.strip()}"


async def test_apply_installs_only_the_flags_that_are_on() -> None:
    from meshcommon.p2p.node import MeshNode

    for spec, wanted in (("all", set(NAMES)), ("none", set()), ("tcp,ping", {"tcp", "ping"})):
        node = MeshNode(NodeConfig("127.0.0.1", 0, overrides=P2POverrides.parse(spec)))
        async with trio.open_nursery() as nursery:
            await nursery.start(node.serve)
            assert set(node.installed_overrides) == wanted, spec
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("spec", ["none", "all", *NAMES])
async def test_each_override_keeps_the_wire_protocol(spec: str, stock_pair, exchange) -> None:  # type: ignore[no-untyped-def]
    async with stock_pair(P2POverrides.parse(spec)) as (stock, tuned):
        await exchange(stock, tuned)
        await exchange(tuned, stock)
        for _ in range(2):  # the second ping reuses the stream when "ping" is on
            assert 0 < await tuned.node.ping(stock.node.peer_id) < 5000
            assert 0 < await stock.node.ping(tuned.node.peer_id) < 5000


def test_overrides_are_parsed_and_unknown_names_refused() -> None:
    assert P2POverrides.parse("all") == P2POverrides()
    assert P2POverrides.parse("") == P2POverrides()
    assert P2POverrides.parse("none") == NO_OVERRIDES
    only = P2POverrides.parse("tcp,yamux")
    assert only.spec == "tcp,yamux" and not only.ping
    assert P2POverrides.parse("all,-coalesce").spec == ",".join(n for n in NAMES if n != "coalesce")
    with pytest.raises(ValueError, match="unknown py-libp2p overrides"):
        P2POverrides.parse("all,-turbo")


def test_the_former_name_lean_is_still_accepted() -> None:
    """``*_P2P_OVERRIDES`` is a documented setting: "lean" (now "novalcache") still works."""
    assert P2POverrides.parse("all,-lean") == P2POverrides.parse("all,-novalcache")
    assert P2POverrides.parse("lean").spec == "novalcache"
    assert not P2POverrides.parse("all,-lean").novalcache
