"""Gitea label sync: keeps WHOOSH's required label set on every monitored repository.

Modules, smallest first: ``required`` (the set), ``gitea`` (HTTP client), ``sync`` (plan and
apply), ``service`` (start-up/periodic runs, metrics), ``api`` (HTTP routes), ``cli``.
"""

from whoosh.labels.required import REQUIRED_LABELS, LabelsConfigError, LabelSpec, required_labels
from whoosh.labels.service import LabelSyncDisabled, LabelSyncService
from whoosh.labels.sync import LabelSyncer, RepoResult, StatusReport, SyncReport, plan_repo

__all__ = [
    "REQUIRED_LABELS",
    "LabelSpec",
    "LabelSyncDisabled",
    "LabelSyncService",
    "LabelSyncer",
    "LabelsConfigError",
    "RepoResult",
    "StatusReport",
    "SyncReport",
    "plan_repo",
    "required_labels",
]
