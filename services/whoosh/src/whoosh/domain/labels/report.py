"""What a label sync or status check reports, per repository and in total (the JSON of
``/api/v1/labels/*`` and of ``python -m whoosh labels ... --json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from whoosh.domain.labels.plan import LabelDrift


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
