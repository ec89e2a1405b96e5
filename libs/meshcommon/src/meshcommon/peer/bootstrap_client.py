"""Where a peer learns whom to dial: WHOOSH's bootstrap list, its cached copy, or static config.

Every fetch retries with exponential backoff and jitter; every good answer is cached on disk
(write-then-rename); while WHOOSH is down the cached list is used and reported as
``source='cache'`` with its age, so a restart of WHOOSH never leaves a peer blind and never
goes unnoticed. Static peers are always added to whatever WHOOSH or the cache says.

A fetch can wait for news: with ``wait_s``, the list's entity tag goes back to WHOOSH in
``If-None-Match`` with ``Prefer: wait=N``, and WHOOSH answers as soon as its list changes,
or ``304 Not Modified`` after N seconds. A new agent is known at once, without polling
faster. A WHOOSH that ignores these headers just answers at once.

An agent asks for its own view (``view_peer_id``, ``view_k``): ``GET
/api/v1/bootstrap-peers/view`` answers its ring neighbours and ``k`` random peers, a few KiB
whatever the size of the mesh, and its long poll answers only when that view changes. A
WHOOSH without the view (404, or it refuses the parameters) is asked for the whole list
instead, and for the view again every ``VIEW_RETRY_S``. The monitor asks for the whole list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from meshcommon.config import PeerSettings
from meshcommon.limits import (
    MAX_BOOTSTRAP_BYTES,
    BodyTooLarge,
    read_capped,
)
from meshcommon.models import BootstrapPeer, BootstrapResponse, LeftPeer, PeerViewInfo
from meshcommon.multiaddr_policy import RejectedAddr
from meshcommon.peer.bootstrap_budget import within_budget
from meshcommon.peer.bootstrap_cache import BootstrapCache
from meshcommon.peer.static_peers import parse_static_peers

log = logging.getLogger(__name__)

BOOTSTRAP_PATH = "/api/v1/bootstrap-peers"
VIEW_PATH = "/api/v1/bootstrap-peers/view"
# Answers of a WHOOSH that has no per-agent view (older) or refuses the parameters.
NO_VIEW_STATUSES = frozenset({400, 404, 405, 422})
VIEW_RETRY_S = 300.0  # then the view is asked for again (WHOOSH may have been upgraded)
Source = Literal["whoosh", "cache", "static", "none"]

# Failure kinds: stable strings, used as metric labels.
KIND_UNREACHABLE = "unreachable"
KIND_HTTP_ERROR = "http_error"
KIND_INVALID_RESPONSE = "invalid_response"
FETCH_OK = "ok"
# Every result ``on_result`` is told (metrics start each at 0).
FETCH_RESULTS = (FETCH_OK, KIND_UNREACHABLE, KIND_HTTP_ERROR, KIND_INVALID_RESPONSE)


@dataclass(frozen=True)
class BootstrapResult:
    peers: tuple[BootstrapPeer, ...]
    source: Source
    fetched_at: datetime | None
    error: str | None = None  # why WHOOSH was not used, when it was configured
    rejected: tuple[RejectedAddr, ...] = ()  # static entries that could not be used
    left: tuple[LeftPeer, ...] = ()  # peers WHOOSH says left on purpose (stop expecting them)
    view: PeerViewInfo | None = None  # a per-agent view: whose, its ring successor

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


NOT_FETCHED = BootstrapResult((), "none", None, "not fetched yet")


class BootstrapSource(Protocol):
    """What a refresh loop needs (tests pass a stub)."""

    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult: ...

    async def aclose(self) -> None: ...


class BootstrapFetchError(Exception):
    """One failed attempt, with a short stable ``kind`` for metrics."""

    def __init__(self, kind: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


def first_error(exc: ValidationError) -> str:
    """``"bootstrap_peers.0.peer_id: Field required"``: where the first problem is, and what."""
    errors = exc.errors()
    if not errors:
        return str(exc)[:200]
    where = ".".join(str(p) for p in errors[0]["loc"]) or "<root>"
    return f"{where}: {errors[0]['msg']}"


def _merge(
    primary: Sequence[BootstrapPeer], extra: Sequence[BootstrapPeer]
) -> tuple[BootstrapPeer, ...]:
    seen = {p.peer_id for p in primary}
    return (*primary, *(p for p in extra if p.peer_id not in seen))


class _NoView(Exception):
    """WHOOSH answered the view's URL with a status that says it has none."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def tls_verification(url: str) -> ssl.SSLContext | bool:
    """What the WHOOSH client verifies TLS with. httpx's default loads certifi's ~150 CA
    certificates into OpenSSL for each client (~1 MiB of a running agent's RSS, measured
    with smaps), for a WHOOSH reached over plain http. So only an https URL gets the
    default; otherwise a context without any CA, under which a TLS connection (none is
    made) would fail verification, never pass unverified."""
    if url.strip().lower().startswith("https://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class WhooshBootstrapClient:
    """``GET {whoosh_url}/api/v1/bootstrap-peers`` with retries, cache and static fallback.

    ``on_result`` is told the outcome of every fetch (``ok`` or a failure kind), for metrics.
    """

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
        on_result: Callable[[str], None] | None = None,
        client: httpx.AsyncClient | None = None,
        view_peer_id: str | None = None,
        view_k: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = whoosh_url.rstrip("/") + BOOTSTRAP_PATH if whoosh_url else ""
        # A per-agent view when both are given (the agent); the whole list otherwise.
        self.view_params = (
            {"peer_id": view_peer_id, "k": str(view_k)} if view_peer_id and view_k > 0 else None
        )
        self.view_url = whoosh_url.rstrip("/") + VIEW_PATH if whoosh_url else ""
        self._clock = clock
        self._no_view_until = 0.0  # while WHOOSH has no view: ask for the whole list
        parsed = parse_static_peers(static)
        self.static, self.static_rejected = parsed.peers, parsed.rejected
        self.cache = BootstrapCache(cache_path)
        self.attempts = attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._on_result = on_result
        # trust_env=False: WHOOSH is reached directly, never through an HTTP(S)_PROXY.
        self.timeout_s = timeout_s
        self._client = client or httpx.AsyncClient(
            timeout=timeout_s, trust_env=False, verify=tls_verification(whoosh_url)
        )
        self._last_error_kind: str | None = None
        # The last good answer and its entity tag: what a 304 confirms.
        self._etag: str | None = None
        self._last: BootstrapResponse | None = None
        self._etag_url = ""  # whose tag it is: the view's or the whole list's

    @classmethod
    def from_settings(
        cls,
        settings: PeerSettings,
        on_result: Callable[[str], None] | None = None,
        *,
        view_peer_id: str | None = None,
        view_k: int = 0,
    ) -> WhooshBootstrapClient:
        return cls(
            settings.whoosh_url,
            static=settings.bootstrap_peers,
            cache_path=settings.bootstrap_cache_path or None,
            attempts=settings.bootstrap_attempts,
            backoff_initial_s=settings.bootstrap_backoff_initial_s,
            backoff_max_s=settings.bootstrap_backoff_max_s,
            timeout_s=settings.bootstrap_timeout_s,
            on_result=on_result,
            view_peer_id=view_peer_id,
            view_k=view_k,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _report(self, result: str) -> None:
        if self._on_result is not None:
            self._on_result(result)

    def asks_for_view(self) -> bool:
        """Whether the next fetch asks for the per-agent view (not the whole list)."""
        return self.view_params is not None and self._clock() >= self._no_view_until

    async def _get_once(self, wait_s: float) -> BootstrapResponse:
        if self.asks_for_view():
            try:
                return await self._get_from(self.view_url, self.view_params, wait_s)
            except _NoView as exc:
                log.info(
                    "WHOOSH at %s has no per-agent view (HTTP %d): using the whole list "
                    "(asking again in %.0f s)",
                    self.view_url,
                    exc.status,
                    VIEW_RETRY_S,
                )
                self._no_view_until = self._clock() + VIEW_RETRY_S
        return await self._get_from(self.url, None, wait_s)

    async def _get_from(
        self, url: str, params: dict[str, str] | None, wait_s: float
    ) -> BootstrapResponse:
        if url != self._etag_url:  # switched between the view and the whole list
            self._etag, self._last, self._etag_url = None, None, url
        headers = {}
        if self._etag is not None and self._last is not None:
            headers["If-None-Match"] = self._etag
            if wait_s > 0:
                headers["Prefer"] = f"wait={wait_s:g}"
        deadline = self.timeout_s + (wait_s if headers else 0)
        try:
            # The whole exchange within its deadline, the body within its budget.
            async with (
                asyncio.timeout(deadline),
                self._client.stream(
                    "GET", url, params=params, headers=headers, timeout=deadline
                ) as resp,
            ):
                content = await read_capped(resp, MAX_BOOTSTRAP_BYTES)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise BootstrapFetchError(
                KIND_UNREACHABLE, f"{type(exc).__name__}: {exc}", retryable=True
            ) from exc
        except BodyTooLarge as exc:
            raise BootstrapFetchError(KIND_INVALID_RESPONSE, str(exc), retryable=False) from exc
        if resp.status_code == 304 and self._last is not None:
            return self._last  # unchanged since our copy
        if resp.status_code >= 500 or resp.status_code == 429:
            raise BootstrapFetchError(KIND_HTTP_ERROR, f"HTTP {resp.status_code}", retryable=True)
        if params is not None and resp.status_code in NO_VIEW_STATUSES:
            raise _NoView(resp.status_code)
        if resp.status_code != 200:
            raise BootstrapFetchError(KIND_HTTP_ERROR, f"HTTP {resp.status_code}", retryable=False)
        try:
            response = BootstrapResponse.model_validate_json(content)
        except ValidationError as exc:
            # A malformed answer will not fix itself in 200 ms: fail over to the cache now.
            raise BootstrapFetchError(
                KIND_INVALID_RESPONSE,
                f"malformed bootstrap response ({exc.error_count()} errors; {first_error(exc)})",
                retryable=False,
            ) from exc
        response = within_budget(response)
        self._etag, self._last = resp.headers.get("etag"), response
        return response

    async def _fetch_whoosh(self, wait_s: float) -> BootstrapResponse:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=self.backoff_initial_s, max=self.backoff_max_s),
            retry=retry_if_exception(lambda e: isinstance(e, BootstrapFetchError) and e.retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                # Only the first attempt waits for news: after a failure, the question is
                # whether WHOOSH answers at all, and a fetch stays within
                # PeerSettings.bootstrap_fetch_budget_s.
                first = attempt.retry_state.attempt_number == 1
                return await self._get_once(wait_s if first else 0.0)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def fetch(self, wait_s: float = 0.0) -> BootstrapResult:
        """The list now, or with ``wait_s``, as soon as it differs from the one we have
        (at most ``wait_s`` later)."""
        if not self.url:
            now = datetime.now(UTC)
            source: Source = "static" if self.static else "none"
            when = now if self.static else None
            return BootstrapResult(self.static, source, when, None, self.static_rejected)
        try:
            response = await self._fetch_whoosh(wait_s)
        except BootstrapFetchError as exc:
            self._report(exc.kind)
            return self._fallback(exc.kind, f"{exc.kind}: {exc}")
        now = datetime.now(UTC)
        self._report(FETCH_OK)
        if self._last_error_kind is not None:
            log.info("WHOOSH answers again at %s: %d peers", self.url, response.count)
            self._last_error_kind = None
        self.cache.save(response, now)
        peers = _merge(response.bootstrap_peers, self.static)
        return BootstrapResult(
            peers, "whoosh", now, None, self.static_rejected, tuple(response.left), response.view
        )

    def _fallback(self, kind: str, cause: str) -> BootstrapResult:
        cached = self.cache.load()
        if cached is not None:
            response, fetched_at = cached
            result = BootstrapResult(
                _merge(response.bootstrap_peers, self.static),
                "cache",
                fetched_at,
                cause,
                self.static_rejected,
                tuple(response.left),
            )
        else:
            source: Source = "static" if self.static else "none"
            when = datetime.now(UTC) if self.static else None
            result = BootstrapResult(self.static, source, when, cause, self.static_rejected)
        # One line per kind of failure, not one per refresh: the API and the metrics carry
        # the running state (source, age, error, fetch counts by result).
        if kind != self._last_error_kind:
            self._last_error_kind = kind
            age = result.age_s()
            log.warning(
                "WHOOSH unusable at %s after %d attempts (%s); using %s list of %d peers%s",
                self.url,
                self.attempts,
                cause,
                result.source,
                len(result.peers),
                f", {age:.0f} s old" if result.source == "cache" and age is not None else "",
            )
        return result
