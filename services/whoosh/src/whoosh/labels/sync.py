"""Compare a repository's labels with the required set, then (optionally) apply the plan.

Planning is pure so it can be tested and shown (dry-run, status) without touching Gitea.
The sync only ever creates labels and edits colour/description of *required* labels; it never
deletes or renames anything, so labels the users own (``priority/high``...) are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from whoosh.labels.gitea import GiteaClient, GiteaError, GiteaLabel
from whoosh.labels.required import LabelSpec

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4  # small: Gitea is one server shared with humans


class LabelDrift(BaseModel):
    """A required label that exists but whose colour or description differs."""

    name: str
    current_color: str
    wanted_color: str
    current_description: str
    wanted_description: str


@dataclass(frozen=True)
class LabelUpdate:
    label_id: int
    spec: LabelSpec


@dataclass
class RepoPlan:
    create: list[LabelSpec] = field(default_factory=list)
    update: list[LabelUpdate] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # required names that exist (drifted too)
    drifted: list[LabelDrift] = field(default_factory=list)


def _find(existing: Sequence[GiteaLabel], name: str) -> GiteaLabel | None:
    """Exact name first, then case-insensitive: an existing 'Bug' counts as 'bug' rather than
    getting a near-duplicate next to it (and we do not rename the user's label)."""
    for label in existing:
        if label.name == name:
            return label
    folded = name.casefold()
    return next((label for label in existing if label.name.casefold() == folded), None)


def plan_repo(
    existing: Sequence[GiteaLabel], required: Sequence[LabelSpec], fix_drift: bool
) -> RepoPlan:
    plan = RepoPlan()
    for spec in required:
        label = _find(existing, spec.name)
        if label is None:
            plan.create.append(spec)
            continue
        plan.present.append(spec.name)
        if label.color != spec.color or label.description.strip() != spec.description.strip():
            plan.drifted.append(
                LabelDrift(
                    name=spec.name,
                    current_color=label.color,
                    wanted_color=spec.color,
                    current_description=label.description,
                    wanted_description=spec.description,
                )
            )
            if fix_drift:
                plan.update.append(LabelUpdate(label.id, spec))
    return plan


class RepoResult(BaseModel):
    """One repository's outcome. ``present``/``missing``/``drifted`` describe the repository
    after this run (for dry-run and status: as it is now); ``to_create``/``to_update`` are the
    plan, ``created``/``updated`` what was actually done."""

    repo: str
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    error_reason: str | None = None
    required: int
    checked: bool = False  # False if the labels could not even be listed
    present: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    drifted: list[LabelDrift] = Field(default_factory=list)
    to_create: list[str] = Field(default_factory=list)
    to_update: list[str] = Field(default_factory=list)
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def count(self) -> str:
        """'9/9': required labels present out of required."""
        return f"{len(self.present) if self.checked else '?'}/{self.required}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def complete(self) -> bool:
        return self.checked and not self.missing


class BaseReport(BaseModel):
    required: list[str]
    repos: list[RepoResult]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.repos)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def repos_complete(self) -> int:
        return sum(r.complete for r in self.repos)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def repos_failed(self) -> int:
        return sum(r.status == "error" for r in self.repos)


class SyncReport(BaseReport):
    dry_run: bool
    fix_drift: bool
    started_at: datetime
    duration_s: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def labels_created(self) -> int:
        return sum(len(r.created) for r in self.repos)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def labels_updated(self) -> int:
        return sum(len(r.updated) for r in self.repos)


class StatusReport(BaseReport):
    checked_at: datetime


def unique_repos(repos: Sequence[str]) -> list[str]:
    """Configured order, duplicates dropped (two workers on one repo would race to create)."""
    return list(dict.fromkeys(r.strip() for r in repos if r.strip()))


class LabelSyncer:
    def __init__(
        self,
        client: GiteaClient,
        required: Sequence[LabelSpec],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.client = client
        self.required = tuple(required)
        self.concurrency = max(1, concurrency)

    async def sync(
        self, repos: Sequence[str], *, dry_run: bool = False, fix_drift: bool = False
    ) -> SyncReport:
        started, t0 = datetime.now(UTC), time.monotonic()
        results = await self._each(repos, write=not dry_run, fix_drift=fix_drift)
        return SyncReport(
            required=[s.name for s in self.required],
            repos=results,
            dry_run=dry_run,
            fix_drift=fix_drift,
            started_at=started,
            duration_s=round(time.monotonic() - t0, 3),
        )

    async def status(self, repos: Sequence[str]) -> StatusReport:
        # Planned with fix_drift so to_update shows what `sync --fix-drift` would change.
        results = await self._each(repos, write=False, fix_drift=True)
        return StatusReport(
            required=[s.name for s in self.required], repos=results, checked_at=datetime.now(UTC)
        )

    async def _each(
        self, repos: Sequence[str], *, write: bool, fix_drift: bool
    ) -> list[RepoResult]:
        limit = asyncio.Semaphore(self.concurrency)

        async def one(repo: str) -> RepoResult:
            async with limit:
                return await self._repo(repo, write=write, fix_drift=fix_drift)

        # _repo never raises, so one repository's failure cannot cancel the others.
        return list(await asyncio.gather(*(one(r) for r in unique_repos(repos))))

    async def _repo(self, repo: str, *, write: bool, fix_drift: bool) -> RepoResult:
        result = RepoResult(repo=repo, required=len(self.required))
        present: set[str] = set()
        drifted: dict[str, LabelDrift] = {}
        try:
            existing = await self.client.list_labels(repo)
            plan = plan_repo(existing, self.required, fix_drift)
            result.checked = True
            present.update(plan.present)
            drifted.update((d.name, d) for d in plan.drifted)
            result.to_create = [s.name for s in plan.create]
            result.to_update = [u.spec.name for u in plan.update]
            if write:
                for spec in plan.create:
                    await self.client.create_label(repo, spec)
                    result.created.append(spec.name)
                    present.add(spec.name)
                for update in plan.update:
                    await self.client.update_label(repo, update.label_id, update.spec)
                    result.updated.append(update.spec.name)
                    drifted.pop(update.spec.name, None)
                if result.created or result.updated:
                    log.info(
                        "labels %s: created %s, updated %s",
                        repo, result.created or "-", result.updated or "-",
                    )  # fmt: skip
        except GiteaError as exc:
            self._fail(result, exc.message, exc.reason)
        except ValueError as exc:  # a malformed owner/name in WHOOSH_GITEA_REPOS
            self._fail(result, str(exc), "config")
        except Exception as exc:  # a bug here must not stop the other repositories
            log.exception("label sync %s: unexpected error", repo)
            self._fail(result, f"{repo}: unexpected error ({type(exc).__name__})", "internal")
        order = [s.name for s in self.required]
        result.present = [n for n in order if n in present]
        result.missing = [n for n in order if n not in present] if result.checked else []
        result.drifted = [drifted[n] for n in order if n in drifted]
        return result

    @staticmethod
    def _fail(result: RepoResult, message: str, reason: str) -> None:
        result.status, result.error, result.error_reason = "error", message, reason
        log.warning("label sync %s failed: %s", result.repo, message)
