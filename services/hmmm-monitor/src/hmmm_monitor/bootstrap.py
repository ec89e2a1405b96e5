"""Where the list of expected peers comes from: WHOOSH, its cached copy, or static config.

The field report's monitor fetched WHOOSH once, with no retry and no cache, so a WHOOSH
restart left it blind. Here every fetch retries with exponential backoff + jitter, every
success is cached on disk (atomically), and when WHOOSH is down the cached list is used
and reported as ``source='cache'`` with its age, never silently.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from hmmm_monitor.metrics import MonitorMetrics
from meshcommon.models import BootstrapPeer, BootstrapResponse

log = logging.getLogger(__name__)

BOOTSTRAP_PATH = "/api/v1/bootstrap-peers"
Source = Literal["whoosh", "cache", "static", "none"]


@dataclass(frozen=True)
class BootstrapResult:
    peers: tuple[BootstrapPeer, ...]
    source: Source
    fetched_at: datetime | None
    error: str | None = None  # why WHOOSH was not used, when it was configured
    rejected: tuple[dict[str, str], ...] = field(default_factory=tuple)  # bad static entries

    def age_s(self, now: datetime | None = None) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.fetched_at).total_seconds())

    def info(self) -> dict[str, object]:
        age = self.age_s()
        return {
            "source": self.source,
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
            "age_s": round(age, 1) if age is not None else None,
            "count": len(self.peers),
            "error": self.error,
        }


class BootstrapSource(Protocol):
    """What the refresh loop needs; tests pass a stub."""

    async def fetch(self) -> BootstrapResult: ...

    async def aclose(self) -> None: ...


class BootstrapFetchError(Exception):
    """One failed attempt, with a short stable ``kind`` for metrics."""

    def __init__(self, kind: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


def static_peers(multiaddrs: Sequence[str]) -> tuple[list[BootstrapPeer], list[dict[str, str]]]:
    """Static ``/.../p2p/<peer_id>`` multiaddrs grouped into one entry per peer ID."""
    by_peer: dict[str, list[str]] = {}
    rejected: list[dict[str, str]] = []
    for addr in multiaddrs:
        head, sep, peer_id = addr.rstrip("/").rpartition("/p2p/")
        if not sep or not head or not peer_id or "/" in peer_id:
            rejected.append({"multiaddr": addr, "reason": "missing_peer_id"})
            log.warning("static bootstrap entry %r skipped: no /p2p/<peer_id>", addr)
            continue
        by_peer.setdefault(peer_id, []).append(addr)
    peers = [
        BootstrapPeer(
            peer_id=pid, name=f"static-{i}", priority=i, multiaddr=addrs[0], multiaddrs=addrs
        )
        for i, (pid, addrs) in enumerate(by_peer.items(), start=1)
    ]
    return peers, rejected


def _merge(
    primary: Sequence[BootstrapPeer], extra: Sequence[BootstrapPeer]
) -> tuple[BootstrapPeer, ...]:
    seen = {p.peer_id for p in primary}
    return (*primary, *(p for p in extra if p.peer_id not in seen))


class BootstrapCache:
    """The last good WHOOSH answer on disk, so a monitor restarted while WHOOSH is down
    still knows whom to dial."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None

    def save(self, response: BootstrapResponse, fetched_at: datetime) -> None:
        if self.path is None:
            return
        doc = {"fetched_at": fetched_at.isoformat(), "response": response.model_dump(mode="json")}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename: a crash mid-write never leaves a truncated cache behind.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".bootstrap-", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write bootstrap cache %s: %s", self.path, exc)

    def load(self) -> tuple[BootstrapResponse, datetime] | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            doc = json.loads(self.path.read_text())
            fetched_at = datetime.fromisoformat(doc["fetched_at"])
            return BootstrapResponse.model_validate(doc["response"]), fetched_at
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            log.warning("bootstrap cache %s unreadable, ignored: %s", self.path, exc)
            return None


class WhooshBootstrapClient:
    """``GET {whoosh_url}/api/v1/bootstrap-peers`` with retries, cache and static fallback."""

    def __init__(
        self,
        whoosh_url: str,
        *,
        static: Sequence[str] = (),
        cache_path: str | os.PathLike[str] | None = None,
        attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 2.0,
        timeout_s: float = 3.0,
        metrics: MonitorMetrics | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = whoosh_url.rstrip("/") + BOOTSTRAP_PATH if whoosh_url else ""
        self.static, self.static_rejected = static_peers(static)
        self.cache = BootstrapCache(cache_path)
        self.attempts = attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.metrics = metrics
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.bootstrap_fetch.labels(result=result).inc()

    async def _get_once(self) -> BootstrapResponse:
        try:
            resp = await self._client.get(self.url)
        except httpx.HTTPError as exc:
            raise BootstrapFetchError(
                "unreachable", f"{type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise BootstrapFetchError("http_error", f"HTTP {resp.status_code}", retryable=True)
        if resp.status_code != 200:
            raise BootstrapFetchError("http_error", f"HTTP {resp.status_code}", retryable=False)
        try:
            return BootstrapResponse.model_validate_json(resp.content)
        except ValidationError as exc:
            # A malformed answer will not fix itself in 200 ms: fail over to the cache now.
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()))
            msg = f"malformed bootstrap response ({exc.error_count()} errors; {where}: "
            raise BootstrapFetchError(
                "invalid_response", msg + f"{first.get('msg', '')})", retryable=False
            ) from exc

    async def _fetch_whoosh(self) -> BootstrapResponse:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=self.backoff_initial_s, max=self.backoff_max_s),
            retry=retry_if_exception(lambda e: isinstance(e, BootstrapFetchError) and e.retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                n = attempt.retry_state.attempt_number
                try:
                    return await self._get_once()
                except BootstrapFetchError as exc:
                    if exc.retryable and n < self.attempts:
                        log.info("WHOOSH attempt %d/%d failed: %s", n, self.attempts, exc)
                    raise
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def fetch(self) -> BootstrapResult:
        now = datetime.now(UTC)
        if not self.url:
            source: Source = "static" if self.static else "none"
            when = now if self.static else None
            return BootstrapResult(
                tuple(self.static), source, when, None, tuple(self.static_rejected)
            )
        try:
            response = await self._fetch_whoosh()
        except BootstrapFetchError as exc:
            self._count(exc.kind)
            return self._fallback(f"{exc.kind}: {exc}")
        self._count("ok")
        self.cache.save(response, now)
        peers = _merge(response.bootstrap_peers, self.static)
        return BootstrapResult(peers, "whoosh", now, None, tuple(self.static_rejected))

    def _fallback(self, cause: str) -> BootstrapResult:
        cached = self.cache.load()
        if cached is not None:
            response, fetched_at = cached
            result = BootstrapResult(
                _merge(response.bootstrap_peers, self.static),
                "cache",
                fetched_at,
                cause,
                tuple(self.static_rejected),
            )
            log.warning(
                "WHOOSH unreachable at %s after %d attempts (%s); using cached bootstrap list "
                "of %d peers, %.0f s old",
                self.url,
                self.attempts,
                cause,
                len(result.peers),
                result.age_s() or 0.0,
            )
            return result
        source: Source = "static" if self.static else "none"
        log.error(
            "WHOOSH unreachable at %s after %d attempts (%s); no cached list, using %s (%d peers)",
            self.url,
            self.attempts,
            cause,
            source,
            len(self.static),
        )
        when = datetime.now(UTC) if self.static else None
        return BootstrapResult(tuple(self.static), source, when, cause, tuple(self.static_rejected))
