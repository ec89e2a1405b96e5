"""Whoosh.start/stop: what it opened it closes, what it was lent it leaves alone."""

from __future__ import annotations

import httpx
import pytest
from whoosh_testkit import make_settings

from whoosh.adapters.discovery.static import StaticSource
from whoosh.wiring import build_whoosh

pytestmark = pytest.mark.anyio


async def test_stop_closes_the_http_client_whoosh_made() -> None:
    whoosh = build_whoosh(make_settings(), source=StaticSource([]))
    await whoosh.start()
    await whoosh.stop()
    assert whoosh.owned_http_client is not None and whoosh.owned_http_client.is_closed


async def test_stop_leaves_a_lent_http_client_open() -> None:
    async with httpx.AsyncClient() as lent:
        whoosh = build_whoosh(make_settings(), source=StaticSource([]), http_client=lent)
        await whoosh.start()
        await whoosh.stop()
        assert whoosh.owned_http_client is None and not lent.is_closed
