"""Health polling: every target's ``GET /api/health``, concurrently, with retries.

Transport errors, timeouts and 5xx are retried (the agent may be starting); 4xx and bodies
that are not a valid AgentHealth are not (asking again gives the same answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Literal

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from meshcommon.models import AgentHealth, utcnow
from meshcommon.multiaddr_policy import AcceptedAddr, MultiaddrPolicy, RejectedAddr
from whoosh.discovery.base import AgentTarget
from whoosh.metrics import Metrics
from whoosh.settings import Settings

log = logging.getLogger("whoosh.polling")

REASON_TIMEOUT: Final = "timeout"
REASON_CONNECT: Final = "connect_error"
REASON_MALFORMED_JSON: Final = "malformed_json"
REASON_INVALID_HEALTH: Final = "invalid_health"
REASON_NO_ROUTABLE: Final = "no_routable_multiaddrs"

State = Literal["healthy", "unreachable"]


class CheckFailed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RetryableCheckFailed(CheckFailed):
    """Worth asking again after a backoff."""


@dataclass(frozen=True)
class AgentStatus:
    target: AgentTarget
    state: State
    reason: str | None = None  # None when healthy
    detail: str | None = None  # human detail of the last error
    health: AgentHealth | None = None
    accepted: tuple[AcceptedAddr, ...] = ()
    rejected: tuple[RejectedAddr, ...] = ()
    attempts: int = 0
    latency_ms: float | None = None
    last_seen: datetime | None = None  # last time it answered healthy
    checked_at: datetime = field(default_factory=utcnow)

    @property
    def peer_id(self) -> str | None:
        return self.health.peer_id if self.health else None

    @property
    def multiaddrs(self) -> list[str]:
        return [a.multiaddr for a in self.accepted]


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class HealthPoller:
    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        metrics: Metrics | None = None,
        policy: MultiaddrPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics or Metrics()
        self.policy = policy or MultiaddrPolicy.from_settings(
            settings.overlay_cidrs, settings.allow_loopback
        )
        self._previous: dict[str, AgentStatus] = {}

    async def poll(self, targets: Iterable[AgentTarget]) -> list[AgentStatus]:
        """Check every target concurrently; one status per target, in input order."""
        targets = list(targets)
        sem = asyncio.Semaphore(max(1, self.settings.max_concurrency))

        async def one(target: AgentTarget) -> AgentStatus:
            async with sem:
                return await self.check(target)

        statuses = list(await asyncio.gather(*(one(t) for t in targets)))
        current = {s.target.url: s for s in statuses}
        for url in self._previous.keys() - current.keys():
            log.info("agent %s no longer discovered", url)
        self._previous = current
        return statuses

    async def check(self, target: AgentTarget) -> AgentStatus:
        previous = self._previous.get(target.url)
        attempts = 0
        latency: list[float] = []
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(max(1, self.settings.health_attempts)),
                wait=wait_exponential_jitter(
                    initial=self.settings.backoff_initial_s,
                    max=self.settings.backoff_max_s,
                    # tenacity's default jitter is 1 s whatever the backoff: scale it.
                    jitter=self.settings.backoff_initial_s,
                ),
                retry=retry_if_exception_type(RetryableCheckFailed),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if attempts > 1:
                        self.metrics.health_check_retries.inc()
                    health = await self._fetch(target, latency)
            status = self._accept(target, health, attempts, latency, previous)
        except CheckFailed as exc:
            status = AgentStatus(
                target,
                "unreachable",
                exc.reason,
                exc.detail,
                attempts=attempts,
                latency_ms=latency[-1] if latency else None,
                last_seen=previous.last_seen if previous else None,
            )
        self.metrics.health_checks.labels(result=status.reason or "healthy").inc()
        self._log_transition(previous, status)
        return status

    async def _fetch(self, target: AgentTarget, latency: list[float]) -> AgentHealth:
        started = time.perf_counter()
        try:
            resp = await self.client.get(
                f"{target.url}/api/health", timeout=self.settings.health_timeout_s
            )
        except httpx.TimeoutException as exc:
            raise RetryableCheckFailed(REASON_TIMEOUT, _short(exc)) from exc
        except httpx.TransportError as exc:
            raise RetryableCheckFailed(REASON_CONNECT, _short(exc)) from exc
        finally:
            latency.append(round((time.perf_counter() - started) * 1000, 1))
        if resp.status_code >= 500:
            raise RetryableCheckFailed(f"http_{resp.status_code}", resp.reason_phrase)
        if resp.status_code != 200:
            raise CheckFailed(f"http_{resp.status_code}", resp.reason_phrase)
        try:
            data = resp.json()
        except ValueError as exc:
            raise CheckFailed(REASON_MALFORMED_JSON, _short(exc)) from exc
        try:
            health = AgentHealth.model_validate(data)
        except ValidationError as exc:
            errs = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()
            )
            raise CheckFailed(REASON_INVALID_HEALTH, errs[:200]) from exc
        if not health.peer_id.strip():
            raise CheckFailed(REASON_INVALID_HEALTH, "peer_id: empty")
        return health

    def _accept(
        self,
        target: AgentTarget,
        health: AgentHealth,
        attempts: int,
        latency: list[float],
        previous: AgentStatus | None,
    ) -> AgentStatus:
        verdict = self.policy.filter(health.multiaddrs, health.peer_id)
        for rej in verdict.rejected:
            self.metrics.multiaddrs_rejected.labels(reason=rej.reason).inc()
        status = AgentStatus(
            target,
            "healthy",
            health=health,
            accepted=verdict.accepted,
            rejected=verdict.rejected,
            attempts=attempts,
            latency_ms=latency[-1] if latency else None,
            last_seen=utcnow(),
        )
        if verdict.accepted:
            return status
        # It answered, but nothing it reported can be dialled: useless as a bootstrap peer.
        reasons = ", ".join(sorted({r.reason for r in verdict.rejected})) or "none reported"
        return replace(
            status,
            state="unreachable",
            reason=REASON_NO_ROUTABLE,
            detail=f"{len(health.multiaddrs)} reported, rejected: {reasons}",
            last_seen=previous.last_seen if previous else None,
        )

    def _log_transition(self, previous: AgentStatus | None, status: AgentStatus) -> None:
        if previous is not None and (previous.state, previous.reason) == (
            status.state,
            status.reason,
        ):
            return  # one line per change, not per poll
        plural = "" if status.attempts == 1 else "s"
        if status.state == "healthy":
            log.info(
                "agent %s healthy: peer %s (%s), %d multiaddrs, after %d attempt%s",
                status.target.url,
                status.peer_id,
                (status.health.name if status.health else "") or status.target.name,
                len(status.accepted),
                status.attempts,
                plural,
            )
        else:
            log.warning(
                "agent %s unreachable: %s (%s) after %d attempt%s",
                status.target.url,
                status.reason,
                status.detail,
                status.attempts,
                plural,
            )
