"""The static source: a fixed list of agent URLs."""

from __future__ import annotations

import pytest

from whoosh.adapters.discovery.static import StaticSource

pytestmark = pytest.mark.anyio


async def test_static_source_dedupes_and_expects_each_url() -> None:
    src = StaticSource(["http://127.0.1.1:8080/", "127.0.1.2:8080", "http://127.0.1.1:8080", ""])
    result = await src.discover()
    assert [t.url for t in result.targets] == ["http://127.0.1.1:8080", "http://127.0.1.2:8080"]
    assert [t.address for t in result.targets] == ["127.0.1.1", "127.0.1.2"]
    assert (result.expected, result.source, result.error) == (2, "static", None)
