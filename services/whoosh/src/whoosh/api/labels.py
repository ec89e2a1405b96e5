"""HTTP routes: ``GET /api/v1/labels/status`` (open) and ``POST /api/v1/labels/sync``.

A real sync writes to Gitea, so it needs the admin token; a dry run writes nothing and is
open. Both answer 503 while label sync is off.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from whoosh.api.deps import ADMIN_RESPONSES, LABELS_OFF_RESPONSE, AdminCheck, LabelSyncDep
from whoosh.api.schemas import ErrorDetail
from whoosh.domain.labels.report import StatusReport, SyncReport
from whoosh.domain.labels.required import LabelsConfigError

router = APIRouter(prefix="/api/v1/labels", tags=["labels"])


class SyncRequest(BaseModel):
    # Strict: {"fix_drift": 0} or "yes" is a 422, not silently false or true.
    model_config = ConfigDict(extra="forbid")

    dry_run: StrictBool = Field(default=False, description="Plan only: writes nothing")
    fix_drift: StrictBool | None = Field(
        default=None, description="Also fix colour/description drift; null: WHOOSH_LABELS_FIX_DRIFT"
    )


# FastAPI answers 400 itself when a body cannot be decoded at all (not UTF-8); a body that
# decodes but is not a valid request is a 422.
UNREADABLE_BODY_RESPONSE: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorDetail, "description": "The body cannot be decoded (not UTF-8 JSON)"},
}


def _config_error(exc: LabelsConfigError) -> HTTPException:
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


@router.get("/status", response_model=StatusReport, responses=LABELS_OFF_RESPONSE)
async def label_status(service: LabelSyncDep) -> StatusReport:
    """Per repository: required labels present, missing or drifted. Reads Gitea, writes nothing."""
    try:
        return await service.status()
    except LabelsConfigError as exc:
        raise _config_error(exc) from None


@router.post(
    "/sync",
    response_model=SyncReport,
    responses={**UNREADABLE_BODY_RESPONSE, **ADMIN_RESPONSES, **LABELS_OFF_RESPONSE},
)
async def label_sync(
    service: LabelSyncDep, check_admin: AdminCheck, body: SyncRequest | None = None
) -> SyncReport:
    """Create missing labels (and fix drift if asked). Per-repository failures are in the
    report (``ok: false``), not an HTTP error: the other repositories were still synced."""
    body = body or SyncRequest()
    if not body.dry_run:
        check_admin()
    try:
        return await service.sync(dry_run=body.dry_run, fix_drift=body.fix_drift)
    except LabelsConfigError as exc:
        raise _config_error(exc) from None
