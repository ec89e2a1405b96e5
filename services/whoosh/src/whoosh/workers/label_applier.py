"""Apply the required labels to repositories on Gitea: list each repository's labels, plan,
then create/update (or, for a dry run or a status, only plan).

Repositories run concurrently (a few at a time); a failure on one is recorded in its
``RepoResult`` and never stops the others. When and how often this runs is
``whoosh.workers.label_sync_service``'s business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from whoosh.adapters.gitea import GiteaClient, GiteaError
from whoosh.domain.labels.plan import LabelDrift, plan_repo, unique_repos
from whoosh.domain.labels.report import RepoResult, StatusReport, SyncReport
from whoosh.domain.labels.required import LabelSpec

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4  # small: Gitea is one server shared with humans


class LabelApplier:
    def __init__(
        self,
        open_client: Callable[[], GiteaClient],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        """``open_client`` makes the Gitea client on first use (``connect``): late, so that
        a Gitea URL the client cannot use is a failed run, reported like any other, and
        never stops WHOOSH from starting."""
        self._open_client = open_client
        self._client: GiteaClient | None = None
        self.concurrency = max(1, concurrency)

    def connect(self) -> GiteaClient:
        """The Gitea client, made on the first call (raises what making it raises)."""
        if self._client is None:
            self._client = self._open_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def sync(
        self,
        repos: Sequence[str],
        required: Sequence[LabelSpec],
        *,
        dry_run: bool = False,
        fix_drift: bool = False,
    ) -> SyncReport:
        started, t0 = datetime.now(UTC), time.monotonic()
        results = await self._each(repos, required, write=not dry_run, fix_drift=fix_drift)
        return SyncReport(
            required=[s.name for s in required],
            repos=results,
            dry_run=dry_run,
            fix_drift=fix_drift,
            started_at=started,
            duration_s=round(time.monotonic() - t0, 3),
        )

    async def status(self, repos: Sequence[str], required: Sequence[LabelSpec]) -> StatusReport:
        # Planned with fix_drift so to_update shows what `sync --fix-drift` would change.
        results = await self._each(repos, required, write=False, fix_drift=True)
        return StatusReport(
            required=[s.name for s in required], repos=results, checked_at=datetime.now(UTC)
        )

    async def _each(
        self, repos: Sequence[str], required: Sequence[LabelSpec], *, write: bool, fix_drift: bool
    ) -> list[RepoResult]:
        client, required = self.connect(), tuple(required)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(repo: str) -> RepoResult:
            async with limit:
                return await self._repo(client, repo, required, write=write, fix_drift=fix_drift)

        # _repo never raises, so one repository's failure cannot cancel the others.
        return list(await asyncio.gather(*(one(r) for r in unique_repos(repos))))

    async def _repo(
        self,
        client: GiteaClient,
        repo: str,
        required: tuple[LabelSpec, ...],
        *,
        write: bool,
        fix_drift: bool,
    ) -> RepoResult:
        result = RepoResult(repo=repo, required=len(required))
        present: set[str] = set()
        drifted: dict[str, LabelDrift] = {}
        try:
            existing = await client.list_labels(repo)
            plan = plan_repo(existing, required, fix_drift)
            result.checked = True
            present.update(plan.present)
            drifted.update((d.name, d) for d in plan.drifted)
            result.to_create = [s.name for s in plan.create]
            result.to_update = [u.spec.name for u in plan.update]
            if write:
                for spec in plan.create:
                    await client.create_label(repo, spec)
                    result.created.append(spec.name)
                    present.add(spec.name)
                for update in plan.update:
                    await client.update_label(repo, update.label_id, update.spec)
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
        order = [s.name for s in required]
        result.present = [n for n in order if n in present]
        result.missing = [n for n in order if n not in present] if result.checked else []
        result.drifted = [drifted[n] for n in order if n in drifted]
        return result

    @staticmethod
    def _fail(result: RepoResult, message: str, reason: str) -> None:
        result.status, result.error, result.error_reason = "error", message, reason
        log.warning("label sync %s failed: %s", result.repo, message)
