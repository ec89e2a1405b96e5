"""``GET /``: a self-contained dashboard (no CDN) polling the JSON API."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


@cache
def _page() -> str:
    return (files("hmmm_monitor.api") / "dashboard.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page())
