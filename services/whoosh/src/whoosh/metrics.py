"""Prometheus metrics, on a registry owned by one WHOOSH (tests build many per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from meshcommon.metrics import export_runtime_metrics
from whoosh.domain.labels.report import BaseReport, SyncReport
from whoosh.domain.peer_claims import CLAIM_REASONS


class WhooshMetrics:
    """Discovery and health polling."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.agents_expected = Gauge(
            "whoosh_agents_expected",
            "Agents the discovery source says exist (NaN: unknown)",
            registry=r,
        )
        self.agents_discovered = Gauge(
            "whoosh_agents_discovered", "Distinct agent targets found by discovery", registry=r
        )
        self.agents_healthy = Gauge(
            "whoosh_agents_healthy", "Distinct peer IDs that answered /api/health", registry=r
        )
        self.agents_unreachable = Gauge(
            "whoosh_agents_unreachable", "Targets whose health check failed", registry=r
        )
        self.health_checks = Counter(
            "whoosh_health_checks",
            "Health checks by outcome (healthy or the reason)",
            ["result"],
            registry=r,
        )
        self.health_check_retries = Counter(
            "whoosh_health_check_retries", "Health check attempts beyond the first", registry=r
        )
        self.multiaddrs_rejected = Counter(
            "whoosh_multiaddrs_rejected",
            "Reported multiaddrs rejected by the policy",
            ["reason"],
            registry=r,
        )
        self.discovery_errors = Counter(
            "whoosh_discovery_errors",
            "Discovery rounds that reported an error",
            ["source"],
            registry=r,
        )
        self.poll_round_seconds = Histogram(
            "whoosh_poll_round_seconds",
            "Duration of one discover+poll+rebuild round",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.duplicate_peer_ids = Gauge(
            "whoosh_duplicate_peer_ids",
            "Peer IDs claimed by agents on different hosts",
            registry=r,
        )
        self.agents_left = Gauge(
            "whoosh_agents_left",
            "Agents listed as left on purpose (scale-down, drain, update), by reason",
            ["reason"],
            registry=r,
        )
        self.peer_records_rejected = Counter(
            "whoosh_peer_records_rejected",
            "Health answers whose peer ID claim a signed peer record did not prove, by "
            "reason (missing, garbled, bad_signature, wrong_peer_id, unsupported_key_type, "
            "wrong_payload_type, too_large, from_the_future, replayed)",
            ["reason"],
            registry=r,
        )
        for reason in CLAIM_REASONS:  # every known reason exported from the start, at 0
            self.peer_records_rejected.labels(reason=reason)
        self.peer_record_verifications = Counter(
            "whoosh_peer_record_verifications",
            "Signed peer records actually verified (an unchanged record is verified once)",
            registry=r,
        )
        self.claims_refused = Gauge(
            "whoosh_claims_refused",
            "Targets whose claim to a peer ID was refused in the last round, by reason "
            "(never listed)",
            ["reason"],
            registry=r,
        )
        self.agents_unsigned = Gauge(
            "whoosh_agents_unsigned",
            "Targets listed without a signed peer record (WHOOSH_UNSIGNED_HEALTH=accept)",
            registry=r,
        )
        export_runtime_metrics(r, "whoosh")


class LabelSyncMetrics:
    """Gitea label sync, on the same registry as the rest of WHOOSH's metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "whoosh_label_sync_runs_total",
            "Label sync runs that wrote to Gitea (dry runs excluded), by result",
            ["result"],
            registry=registry,
        )
        self.created = Counter(
            "whoosh_labels_created_total", "Labels created on Gitea", registry=registry
        )
        self.updated = Counter(
            "whoosh_labels_updated_total",
            "Labels whose colour/description drift was fixed",
            registry=registry,
        )
        self.errors = Counter(
            "whoosh_label_sync_errors_total",
            "Per-repository label sync failures, by reason",
            ["reason"],
            registry=registry,
        )
        self.complete = Gauge(
            "whoosh_label_repos_complete",
            "Monitored repositories that have every required label (last sync or status)",
            registry=registry,
        )
        self.failed = Gauge(
            "whoosh_label_repos_failed",
            "Monitored repositories whose labels could not be listed or fixed (last sync or "
            "status)",
            registry=registry,
        )
        # One series per configured repository (WHOOSH_GITEA_REPOS): a bounded set.
        self.missing = Gauge(
            "whoosh_label_repo_missing_labels",
            "Required labels a repository lacks (last sync or status that could list them)",
            ["repo"],
            registry=registry,
        )

    def record(self, report: BaseReport, *, real_sync: bool) -> None:
        self.complete.set(report.repos_complete)
        self.failed.set(report.repos_failed)
        for repo in report.repos:
            if repo.checked:  # unlisted: the last known count stays, the failure shows
                self.missing.labels(repo=repo.repo).set(len(repo.missing))
        for repo in report.repos:
            if repo.error_reason:
                self.errors.labels(reason=repo.error_reason).inc()
        if isinstance(report, SyncReport) and real_sync:
            self.created.inc(report.labels_created)
            self.updated.inc(report.labels_updated)
            if report.ok:
                result = "ok"
            elif report.repos_failed == len(report.repos):
                result = "failed"
            else:
                result = "partial"
            self.runs.labels(result=result).inc()
