"""``python floor_server.py HOST PORT``: the least an HTTP endpoint can cost here (the same
uvicorn and httptools as the services, one route answering fixed bytes), so that a latency
measured under load can be read against what the machine itself allows at that moment."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"bootstrap_peers": [], "count": 0}'


async def fixed(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


if __name__ == "__main__":
    app = Starlette(routes=[Route("/", fixed)])
    uvicorn.run(app, host=sys.argv[1], port=int(sys.argv[2]), log_level="warning", http="httptools")
