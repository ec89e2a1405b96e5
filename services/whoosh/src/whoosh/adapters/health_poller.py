"""Health polling: every target's ``GET /api/health``, concurrently, with retries.

Transport errors, timeouts and 5xx are retried (the agent may be starting); 4xx and bodies
that are not a valid AgentHealth are not (asking again gives the same answer). What an
answer means is decided in ``whoosh.domain.agent_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from meshcommon.limits import BodyTooLarge, read_capped
from meshcommon.models import AgentHealth, utcnow
from meshcommon.multiaddr_policy import MultiaddrPolicy
from meshcommon.peer_record import PeerRecordVerifier, RecordRejected, SignedPeerRecord
from whoosh.domain.agent_status import (
    REASON_CONNECT,
    REASON_OVERSIZED_HEALTH,
    REASON_TIMEOUT,
    AgentStatus,
    CheckFailed,
    RetryableCheckFailed,
    read_health,
    short_error,
    status_from_failure,
    status_from_health,
)
from whoosh.domain.peer_claims import UnsignedPolicy, check_claim
from whoosh.domain.targets import AgentTarget
from whoosh.metrics import WhooshMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollConfig:
    """What the poller is told (the WHOOSH_* settings of the same names)."""

    max_concurrency: int  # checks in flight at once
    health_attempts: int  # tries per agent per round
    backoff_initial_s: float
    backoff_max_s: float
    health_timeout_s: float  # whole-request deadline of one check
    max_health_bytes: int  # a larger answer is refused unread
    max_multiaddrs: int  # an agent claiming more is refused
    unsigned_health: UnsignedPolicy  # an answer without a signed peer record
    record_max_skew_s: float  # how far ahead of our clock a record's seq may be


class HealthPoller:
    def __init__(
        self,
        config: PollConfig,
        client: httpx.AsyncClient,
        metrics: WhooshMetrics,
        policy: MultiaddrPolicy,
    ) -> None:
        self.config = config
        self.client = client
        self.metrics = metrics
        self.policy = policy
        self._previous: dict[str, AgentStatus] = {}
        # Signed peer records, verified once per distinct bytes (1,000 agents answering
        # the same record every poll cost a lookup each).
        self.records = PeerRecordVerifier(max_skew_s=config.record_max_skew_s)

    async def poll(
        self, targets: Iterable[AgentTarget], reuse: Mapping[str, AgentStatus] | None = None
    ) -> list[AgentStatus]:
        """Check every target concurrently; one status per target, in input order.
        Targets whose URL is in ``reuse`` keep that status without being asked again."""
        targets = list(targets)
        reuse = reuse or {}
        sem = asyncio.Semaphore(max(1, self.config.max_concurrency))

        async def one(target: AgentTarget) -> AgentStatus:
            kept = reuse.get(target.url)
            if kept is not None and kept.target == target:
                return kept
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
                stop=stop_after_attempt(max(1, self.config.health_attempts)),
                wait=wait_exponential_jitter(
                    initial=self.config.backoff_initial_s,
                    max=self.config.backoff_max_s,
                    # tenacity's default jitter is 1 s whatever the backoff: scale it.
                    jitter=self.config.backoff_initial_s,
                ),
                retry=retry_if_exception_type(RetryableCheckFailed),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if attempts > 1:
                        self.metrics.health_check_retries.inc()
                    health, reached_ip = await self._fetch(target, latency)
            status = status_from_health(
                target,
                health,
                self.policy,
                attempts=attempts,
                latency_ms=latency[-1] if latency else None,
                previous=previous,
                now=utcnow(),
                max_multiaddrs=self.config.max_multiaddrs,
                record=check_claim(health, self._open_record(health), reached_ip),
                unsigned=self.config.unsigned_health,
            )
            if status.record is not None and status.record.reason:
                self.metrics.peer_records_rejected.labels(reason=status.record.reason).inc()
            for rejected in status.rejected:
                self.metrics.multiaddrs_rejected.labels(reason=rejected.reason).inc()
        except CheckFailed as exc:
            status = status_from_failure(
                target,
                exc,
                attempts=attempts,
                latency_ms=latency[-1] if latency else None,
                previous=previous,
            )
        self.metrics.health_checks.labels(result=status.reason or "healthy").inc()
        self._log_transition(previous, status)
        return status

    def _open_record(self, health: AgentHealth) -> SignedPeerRecord | RecordRejected | None:
        if health.peer_record is None:
            return None
        before = self.records.verified
        try:
            return self.records.open_base64(
                health.peer_record, expected_peer_id=health.peer_id, now_ns=time.time_ns()
            )
        except RecordRejected as exc:
            return exc
        finally:
            self.metrics.peer_record_verifications.inc(self.records.verified - before)

    async def _fetch(
        self, target: AgentTarget, latency: list[float]
    ) -> tuple[AgentHealth, str | None]:
        """One ``GET /api/health`` within budgets: ``health_timeout_s`` for the whole
        exchange (a peer trickling its answer byte by byte is cut off, not waited for),
        ``max_health_bytes`` for the body (refused unread). Also the IP address the
        connection reached (what a signed record must name)."""
        timeout_s, limit = self.config.health_timeout_s, self.config.max_health_bytes
        started = time.perf_counter()
        try:
            async with (
                asyncio.timeout(timeout_s),
                self.client.stream("GET", f"{target.url}/api/health", timeout=timeout_s) as resp,
            ):
                content = await read_capped(resp, limit)
                reached_ip = _reached_ip(resp, target)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RetryableCheckFailed(
                REASON_TIMEOUT,
                short_error(exc) if str(exc) else f"no answer within {timeout_s:g} s",
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableCheckFailed(REASON_CONNECT, short_error(exc)) from exc
        except BodyTooLarge as exc:
            raise CheckFailed(REASON_OVERSIZED_HEALTH, str(exc)) from exc
        finally:
            latency.append(round((time.perf_counter() - started) * 1000, 1))
        return read_health(resp.status_code, resp.reason_phrase, content), reached_ip

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


def _reached_ip(resp: httpx.Response, target: AgentTarget) -> str | None:
    """The peer address of the connection that answered (whatever name the URL has);
    the target's own address when the transport does not say (an in-process fake)."""
    stream = resp.extensions.get("network_stream")
    if stream is not None:
        with contextlib.suppress(Exception):
            addr = stream.get_extra_info("server_addr")
            if addr:
                return str(addr[0])
    try:
        return str(ipaddress.ip_address(target.address))
    except ValueError:
        return None
