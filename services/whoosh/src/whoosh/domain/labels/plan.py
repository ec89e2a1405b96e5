"""Compare a repository's labels with the required set: what to create, what drifted.

Pure, so the plan can be tested and shown (dry run, status) without touching Gitea. A plan
only ever creates labels and edits colour/description of *required* labels; it never
deletes or renames anything, so labels the users own (``priority/high``...) are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from whoosh.domain.labels.required import LabelSpec


@dataclass(frozen=True)
class GiteaLabel:
    """A label as it exists on a repository."""

    id: int
    name: str
    color: str  # normalised '#rrggbb'
    description: str


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


def unique_repos(repos: Sequence[str]) -> list[str]:
    """Configured order, duplicates dropped (two workers on one repo would race to create)."""
    return list(dict.fromkeys(r.strip() for r in repos if r.strip()))
