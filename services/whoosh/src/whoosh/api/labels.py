"""HTTP routes: ``GET /api/v1/labels/status`` (open) and ``POST /api/v1/labels/sync``.

A real sync writes to Gitea, so it needs the admin token; a dry run writes nothing and is open.
The service is read from ``request.app.state.label_sync`` (a LabelSyncService).
"""

from __future__ import annotations

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel

from whoosh.api.deps import require_admin
from whoosh.domain.labels.report import StatusReport, SyncReport
from whoosh.domain.labels.required import LabelsConfigError
from whoosh.workers.label_sync import OFF_MESSAGE, LabelSyncDisabled, LabelSyncService

router = APIRouter(prefix="/api/v1/labels", tags=["labels"])


class SyncRequest(BaseModel):
    dry_run: bool = False
    fix_drift: bool | None = None  # None: use WHOOSH_LABELS_FIX_DRIFT


def _service(request: Request) -> LabelSyncService:
    service: LabelSyncService | None = getattr(request.app.state, "label_sync", None)
    if service is None or not service.enabled:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, OFF_MESSAGE)
    return service


def _http_error(exc: Exception) -> HTTPException:
    if isinstance(exc, LabelSyncDisabled):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


@router.get("/status", response_model=StatusReport)
async def label_status(request: Request) -> StatusReport:
    """Per repository: required labels present, missing or drifted. Reads Gitea, writes nothing."""
    try:
        return await _service(request).status()
    except (LabelSyncDisabled, LabelsConfigError) as exc:
        raise _http_error(exc) from None


@router.post("/sync", response_model=SyncReport)
async def label_sync(
    request: Request,
    body: SyncRequest | None = None,
    authorization: str | None = Header(default=None),
) -> SyncReport:
    """Create missing labels (and fix drift if asked). Per-repository failures are in the
    report (``ok: false``), not an HTTP error: the other repositories were still synced."""
    body = body or SyncRequest()
    service = _service(request)
    if not body.dry_run:
        require_admin(request, authorization)
    try:
        return await service.sync(dry_run=body.dry_run, fix_drift=body.fix_drift)
    except (LabelSyncDisabled, LabelsConfigError) as exc:
        raise _http_error(exc) from None
