"""The composition root: which discovery source the settings choose, and one Docker client
for the one engine."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from whoosh_testkit import make_settings

from whoosh.adapters.discovery.fallback import FallbackSource
from whoosh.adapters.discovery.swarm import SwarmTaskSource
from whoosh.adapters.docker_engine import DockerEngine
from whoosh.wiring import build_source, build_whoosh

pytestmark = pytest.mark.anyio


def test_discovery_source_from_the_settings(tmp_path: Path) -> None:
    engine = DockerEngine("unix:///nowhere.sock")
    static = make_settings(discovery="auto", static_agents=["http://a:1"])
    assert build_source(static, engine, engine_found=True).name == "static"
    auto = build_source(make_settings(discovery="auto"), engine, engine_found=True)
    assert isinstance(auto, FallbackSource) and auto.name == "swarm+dns"
    assert build_source(make_settings(discovery="auto"), engine, engine_found=False).name == "dns"
    forced = build_source(make_settings(discovery="swarm"), engine, engine_found=False)
    assert isinstance(forced, SwarmTaskSource) and forced.api is engine
    dns = build_source(make_settings(discovery="dns", agent_service="x"), engine, engine_found=True)
    assert (dns.name, getattr(dns, "dns_name", None)) == ("dns", "tasks.x")


async def test_discovery_and_the_diagnosis_share_one_engine_client(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    sock.touch()
    async with httpx.AsyncClient() as client:
        settings = make_settings(discovery="auto", docker_url=f"unix://{sock}")
        whoosh = build_whoosh(settings, http_client=client)
        source = whoosh.directory.source
        assert isinstance(source, FallbackSource) and isinstance(source.primary, SwarmTaskSource)
        assert isinstance(whoosh.swarm_inspector, DockerEngine)
        assert source.primary.api is whoosh.swarm_inspector

        missing = make_settings(discovery="swarm", docker_url=f"unix://{tmp_path}/nope.sock")
        whoosh = build_whoosh(missing, http_client=client)
        assert whoosh.swarm_inspector is None
        assert whoosh.no_swarm_reason == f"no Docker Engine socket at unix://{tmp_path}/nope.sock"
