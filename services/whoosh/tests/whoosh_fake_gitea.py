"""A small fake Gitea (respx) that follows Gitea's REST API for labels.

Modelled on Gitea's swagger / behaviour: 1-based ``page``, ``limit`` clamped to
``[api] MAX_RESPONSE_ITEMS`` (default 50), labels sorted by name, ``X-Total-Count`` and an RFC 8288
``Link`` header (next/last), colours returned as 6 hex digits without '#', POST -> 201 with the
new label, PATCH -> 200, errors as ``{"message": ..., "url": ...}``, auth ``token <token>``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import httpx

from whoosh.adapters.gitea import RetryPolicy
from whoosh.domain.labels.required import REQUIRED_LABELS
from whoosh.settings import Settings

GITEA = "http://gitea.test"
TOKEN = "gtea-5ecr3t-t0ken-0123456789abcdef"
ADMIN = "admin-token-xyz"
MONITORED_REPOS = [
    "chorus/whoosh-ui",
    "chorus/SequentialThinkingForCHORUS",
    "chorus/TEST",
    "chorus/WHOOSH",
    "chorus/CHORUS",
]
# Retries as in production, minus the waiting.
FAST = RetryPolicy(attempts=3, initial_s=0.001, max_s=0.005, retry_after_cap_s=0.05)
_COLOR = re.compile(r"^#?[0-9a-fA-F]{6}$")
Fault = int | httpx.Response | Exception


def error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"errors": None, "message": message, "url": f"{GITEA}/api/swagger"}
    return httpx.Response(status, json=body, headers=headers)


class FakeGitea:
    def __init__(self, max_items: int = 50, default_limit: int = 30) -> None:
        self.max_items = max_items
        self.default_limit = default_limit
        self.link_header = True
        self.repos: dict[str, dict[int, dict[str, Any]]] = {}
        self.faults: dict[str, list[Fault]] = defaultdict(list)  # one-shot, in order
        self.always: dict[str, Fault] = {}  # every request for that repository
        self.calls: list[tuple[str, str]] = []  # (method, repo)
        self._next_id = 1

    # -- set-up helpers ---------------------------------------------------------------------

    def add_repo(self, repo: str, labels: list[tuple[str, str, str]] | None = None) -> None:
        self.repos[repo] = {}
        for name, color, description in labels or []:
            self._store(repo, name, color, description)

    def add_required(self, repo: str, skip: tuple[str, ...] = ()) -> None:
        """The repository already has the required set (Gitea's colour form), except skip."""
        self.add_repo(repo)
        for spec in REQUIRED_LABELS:
            if spec.name not in skip:
                self._store(repo, spec.name, spec.color, spec.description)

    def names(self, repo: str) -> list[str]:
        return sorted(label["name"] for label in self.repos[repo].values())

    def label(self, repo: str, name: str) -> dict[str, Any]:
        return next(v for v in self.repos[repo].values() if v["name"] == name)

    def writes(self, repo: str | None = None) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET" and (repo is None or c[1] == repo)]

    def _store(self, repo: str, name: str, color: str, description: str) -> dict[str, Any]:
        label = {
            "id": self._next_id,
            "name": name,
            "color": color.lstrip("#").lower(),  # recent Gitea: no '#'
            "description": description,
            "exclusive": False,
            "is_archived": False,
            "url": f"{GITEA}/api/v1/repos/{repo}/labels/{self._next_id}",
        }
        self.repos[repo][self._next_id] = label
        self._next_id += 1
        return label

    # -- the API ----------------------------------------------------------------------------

    def handle(
        self, request: httpx.Request, owner: str, name: str, label_id: str | None = None
    ) -> httpx.Response:
        repo = f"{owner}/{name}"
        self.calls.append((request.method, repo))
        fault = self.faults[repo].pop(0) if self.faults[repo] else self.always.get(repo)
        if fault is not None:
            if isinstance(fault, Exception):
                raise fault
            return fault if isinstance(fault, httpx.Response) else error(fault, "injected")
        if request.headers.get("Authorization") != f"token {TOKEN}":
            return error(401, "user does not exist [uid: 0, name: ]")
        if repo not in self.repos:
            return error(404, "The target couldn't be found.")
        if request.method == "GET" and label_id is None:
            return self._list(request, repo)
        if request.method == "POST" and label_id is None:
            return self._create(request, repo)
        if request.method == "PATCH" and label_id is not None:
            return self._edit(request, repo, int(label_id))
        if request.method == "DELETE":
            self.repos[repo].pop(int(label_id or 0), None)
            return httpx.Response(204)
        return error(405, "method not allowed")

    def _list(self, request: httpx.Request, repo: str) -> httpx.Response:
        page = max(1, int(request.url.params.get("page", 1)))
        limit = int(request.url.params.get("limit", self.default_limit))
        limit = min(limit if limit > 0 else self.default_limit, self.max_items)
        labels = sorted(self.repos[repo].values(), key=lambda v: v["name"])
        chunk = labels[(page - 1) * limit : page * limit]
        headers = {"X-Total-Count": str(len(labels))}
        last = max(1, -(-len(labels) // limit))
        if self.link_header:
            base = f"{GITEA}/api/v1/repos/{repo}/labels?limit={limit}"
            links = []
            if page < last:
                links.append(f'<{base}&page={page + 1}>; rel="next"')
                links.append(f'<{base}&page={last}>; rel="last"')
            if page > 1:
                links.append(f'<{base}&page=1>; rel="first"')
                links.append(f'<{base}&page={page - 1}>; rel="prev"')
            if links:
                headers["Link"] = ",".join(links)
        return httpx.Response(200, json=chunk, headers=headers)

    def _create(self, request: httpx.Request, repo: str) -> httpx.Response:
        body = json.loads(request.content)
        if not body.get("name") or not _COLOR.match(body.get("color", "")):
            return error(422, "[Color]: Color is invalid")
        label = self._store(repo, body["name"], body["color"], body.get("description", ""))
        return httpx.Response(201, json=label)

    def _edit(self, request: httpx.Request, repo: str, label_id: int) -> httpx.Response:
        label = self.repos[repo].get(label_id)
        if label is None:
            return error(404, "The target couldn't be found.")
        body = json.loads(request.content)
        for key in ("name", "description", "exclusive", "is_archived"):
            if key in body:
                label[key] = body[key]
        if "color" in body:
            label["color"] = body["color"].lstrip("#").lower()
        return httpx.Response(200, json=label)


def gitea_settings(repos: list[str], **overrides: Any) -> Settings:
    """Label sync on, against the fake Gitea, with an admin token; no sync at start-up."""
    values: dict[str, Any] = {
        "gitea_url": GITEA,
        "gitea_token": TOKEN,
        "gitea_repos": repos,
        "admin_token": ADMIN,
        "labels_sync_on_start": False,
    }
    values.update(overrides)
    return Settings(**values)


GITEA_LABELS_PATH = (
    r"^/api/v1/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/labels(?:/(?P<label_id>\d+))?$"
)
