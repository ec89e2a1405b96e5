"""The slice of Gitea's REST API that label sync needs, with retries and readable errors.

Endpoints (Gitea API v1): ``GET /repos/{owner}/{repo}/labels?page=&limit=`` (paged, 1-based,
``X-Total-Count`` and ``Link`` headers), ``POST /repos/{owner}/{repo}/labels`` -> 201,
``PATCH /repos/{owner}/{repo}/labels/{id}`` -> 200. Auth: ``Authorization: token <token>``.

The token lives only in the httpx client's default headers: it is never logged, never put in
an exception message (messages are also scrubbed, in case Gitea echoes it back).
"""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from whoosh.domain.labels.plan import GiteaLabel
from whoosh.domain.labels.required import LabelSpec, normalize_color

log = logging.getLogger(__name__)

# Gitea's default [api] MAX_RESPONSE_ITEMS is 50; a larger limit would be clamped anyway.
PAGE_LIMIT = 50
# A guard against a server whose paging headers never end (5000 labels at 50 per page).
MAX_PAGES = 100


class GiteaError(Exception):
    """A failure talking to Gitea about one repository. ``reason`` is a short metric label."""

    reason = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class GiteaAuthError(GiteaError):
    reason = "auth"


class GiteaForbidden(GiteaError):
    reason = "forbidden"


class GiteaNotFound(GiteaError):
    reason = "not_found"


class GiteaRejected(GiteaError):
    """Gitea refused the request's content (400/409/422)."""

    reason = "rejected"


class GiteaUnavailable(GiteaError):
    """Unreachable, timing out, rate limiting or answering 5xx after every retry."""

    reason = "unavailable"


class GiteaBadResponse(GiteaError):
    """Gitea answered, but not with what its API documents (HTML page, wrong JSON shape)."""

    reason = "bad_response"


class _Retryable(Exception):
    """Internal: a failure worth another attempt; ``final`` is raised if none is left."""

    def __init__(self, final: GiteaError, retry_after: float | None = None) -> None:
        super().__init__(final.message)
        self.final = final
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial_s: float = 0.5
    max_s: float = 8.0
    # Honour Retry-After, but never park a sync for longer than this on one request.
    retry_after_cap_s: float = 30.0


def split_repo(spec: str) -> tuple[str, str]:
    """``'owner/name'`` -> ``('owner', 'name')``; anything else is a configuration error."""
    owner, sep, name = spec.strip().partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"invalid repository {spec!r} in WHOOSH_GITEA_REPOS: expected owner/name")
    return owner, name


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class GiteaClient:
    def __init__(
        self,
        base_url: str,
        token: SecretStr | None,
        *,
        timeout_s: float,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``base_url``: Gitea's root URL or its ``/api/v1`` (WHOOSH_GITEA_URL); ``token``:
        its API token (WHOOSH_GITEA_TOKEN); ``timeout_s``: per request."""
        if not base_url:
            raise ValueError("WHOOSH_GITEA_URL is not set")
        url = httpx.URL(base_url.rstrip("/"))
        # Accept both the Gitea root URL and one that already ends in /api/v1.
        path = url.path.rstrip("/")
        if not path.endswith("/api/v1"):
            path += "/api/v1"
        # Userinfo is dropped from what we show, in case someone put credentials in the URL.
        self.display_url = str(url.copy_with(path=path, username=None, password=None))
        self.retry = retry or RetryPolicy()
        self._timeout = timeout_s
        self._secret = token.get_secret_value() if token else ""
        headers = {"Accept": "application/json", "User-Agent": "whoosh-label-sync"}
        if self._secret:
            headers["Authorization"] = f"token {self._secret}"
        self._http = httpx.AsyncClient(
            base_url=str(url.copy_with(path=path + "/")),
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:  # never the default repr, which could grow to include headers
        return f"GiteaClient({self.display_url!r})"

    # -- public API ---------------------------------------------------------------------------

    async def list_labels(self, repo: str) -> list[GiteaLabel]:
        """Every label of ``repo`` (all pages)."""
        path = self._labels_path(repo)
        found: dict[int, GiteaLabel] = {}
        for page in range(1, MAX_PAGES + 1):
            response = await self._request(
                "GET", path, repo, params={"page": page, "limit": PAGE_LIMIT}
            )
            items = self._json(response, repo)
            if not isinstance(items, list):
                raise GiteaBadResponse(
                    f"{repo}: expected a JSON list of labels from Gitea, got {type(items).__name__}"
                )
            # Keyed by id: a label created while we page can shift another onto two pages.
            for item in items:
                label = self._label(item, repo)
                found[label.id] = label
            if not items or not self._has_more(response, len(items), len(found)):
                break
        return list(found.values())

    async def create_label(self, repo: str, spec: LabelSpec) -> GiteaLabel:
        payload = {"name": spec.name, "color": spec.color, "description": spec.description}
        response = await self._request(
            "POST", self._labels_path(repo), repo, json=payload, idempotent=False
        )
        return self._label(self._json(response, repo), repo)

    async def update_label(self, repo: str, label_id: int, spec: LabelSpec) -> GiteaLabel:
        # Only colour and description: a label's name is the user's, never renamed here.
        payload = {"color": spec.color, "description": spec.description}
        response = await self._request(
            "PATCH", f"{self._labels_path(repo)}/{label_id}", repo, json=payload
        )
        return self._label(self._json(response, repo), repo)

    # -- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _labels_path(repo: str) -> str:
        owner, name = split_repo(repo)
        return f"repos/{quote(owner, safe='')}/{quote(name, safe='')}/labels"

    @staticmethod
    def _has_more(response: httpx.Response, page_len: int, seen: int) -> bool:
        if "next" in response.links:
            return True
        total = response.headers.get("X-Total-Count", "")
        if total.isdigit():
            return seen < int(total)
        if "link" in response.headers:
            return False  # a Link header without rel="next": this was the last page
        return page_len >= PAGE_LIMIT  # no paging headers at all: a full page may have more

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _json(self, response: httpx.Response, repo: str) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise GiteaBadResponse(
                f"{repo}: Gitea's answer to {response.request.method} was not JSON ({kind}); "
                f"is WHOOSH_GITEA_URL ({self.display_url}) really Gitea?",
                status=response.status_code,
            ) from None

    def _label(self, item: Any, repo: str) -> GiteaLabel:
        try:
            if not isinstance(item["id"], int) or not isinstance(item["name"], str):
                raise TypeError
            return GiteaLabel(
                id=item["id"],
                name=item["name"],
                color=normalize_color(item.get("color") or "000000"),
                description=item.get("description") or "",
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            shown = self._scrub(repr(item))[:120]
            raise GiteaBadResponse(
                f"{repo}: unexpected label object in Gitea's answer: {shown}"
            ) from None

    def _detail(self, response: httpx.Response) -> str:
        """Gitea's own error text ({"message": ...}), if it sent one."""
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            return ""
        return f": {self._scrub(str(message))[:200]}" if message else ""

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.retry_after_cap_s)
        backoff = wait_exponential_jitter(initial=self.retry.initial_s, max=self.retry.max_s)
        return float(backoff(state))

    async def _request(
        self, method: str, path: str, repo: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "Gitea %s %s: %s; retry %d/%d in %.1fs",
                method, path, exc, state.attempt_number, self.retry.attempts - 1, wait,
            )  # fmt: skip

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, repo, idempotent, **kwargs)
        except _Retryable as exc:
            final = exc.final
            raise type(final)(
                f"{final.message} (gave up after {self.retry.attempts} attempts)",
                status=final.status,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _once(
        self, method: str, path: str, repo: str, idempotent: bool, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached Gitea, so even a POST is safe to repeat.
            raise _Retryable(
                GiteaUnavailable(f"{repo}: Gitea unreachable at {self.display_url} ({exc!s})")
            ) from None
        except httpx.TimeoutException:
            error = GiteaUnavailable(
                f"{repo}: Gitea did not answer within {self._timeout:g}s at {self.display_url}"
            )
            if idempotent:
                raise _Retryable(error) from None
            raise error from None
        except httpx.TransportError as exc:
            error = GiteaUnavailable(
                f"{repo}: Gitea unreachable at {self.display_url} ({type(exc).__name__}: {exc!s})"
            )
            if idempotent:
                raise _Retryable(error) from None
            raise error from None
        return self._check(response, repo, idempotent)

    def _check(self, response: httpx.Response, repo: str, idempotent: bool) -> httpx.Response:
        code = response.status_code
        if 200 <= code < 300:
            return response
        detail = self._detail(response)
        what = f"{response.request.method} {repo}"
        if code == 401:
            raise GiteaAuthError(
                f"{repo}: Gitea rejected the token (401 Unauthorized); check WHOOSH_GITEA_TOKEN"
                f"{detail}",
                status=code,
            )
        if code == 403:
            raise GiteaForbidden(
                f"{repo}: the token has no permission here (403 Forbidden); managing labels "
                f"needs write access to the repository's issues{detail}",
                status=code,
            )
        if code == 404:
            raise GiteaNotFound(
                f"{repo}: repository not found on Gitea (404); check WHOOSH_GITEA_REPOS, or "
                "whether the token can see this private repository",
                status=code,
            )
        if code == 429:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            # A rate-limited request was not processed, so even a POST may be repeated.
            raise _Retryable(
                GiteaUnavailable(
                    f"{repo}: Gitea is rate limiting WHOOSH (429 Too Many Requests){detail}",
                    status=code,
                ),
                retry_after,
            )
        if code >= 500:
            error = GiteaUnavailable(
                f"{repo}: Gitea failed with {code} {response.reason_phrase}{detail}", status=code
            )
            # A POST that got a 500/502/504 may have been applied; repeating it could create a
            # duplicate label. The next run re-lists and catches up instead. 503 means "not
            # processed" and is safe to repeat.
            if idempotent or code == 503:
                raise _Retryable(error, _retry_after_seconds(response.headers.get("Retry-After")))
            raise error
        if code in (400, 409, 422):
            raise GiteaRejected(f"{what}: Gitea refused the request ({code}){detail}", status=code)
        raise GiteaBadResponse(f"{what}: unexpected HTTP status {code} from Gitea", status=code)
