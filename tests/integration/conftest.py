"""Process-level fixtures: real agents, WHOOSH and monitor processes on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from meshlocal import LocalMesh, MeshLayout


def unavailable(reason: str) -> NoReturn:
    """A tool a test needs (root, iptables, chromium) is missing: under `make test`
    (CHORUS_REQUIRE_ENGINE=1) a failure, run by hand a skip that says why."""
    if os.environ.get("CHORUS_REQUIRE_ENGINE") == "1":
        pytest.fail(f"{reason} (`make test` requires it: CHORUS_REQUIRE_ENGINE=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    """10 agents + WHOOSH + monitor, plus agent-11, which WHOOSH does not know about: it
    joins the mesh through WHOOSH's list like the others, but nobody, the monitor included,
    dials it, so the monitor can only hear it through GossipSub forwarding."""
    layout = MeshLayout(
        agents=10,
        agent_net="127.0.77",
        whoosh_ip="127.0.78.2",
        monitor_ip="127.0.78.3",
        broadcast_interval_s=3.0,
    )
    local = LocalMesh(layout, run_dir=tmp_path_factory.mktemp("mesh"))
    local.build()
    local.processes.append(local.agent_process(11))
    try:
        local.start()
        yield local
    finally:
        local.stop()
        if request.session.testsfailed:
            print(local.log_tail())
