"""The last good bootstrap list on disk, so that a peer restarted while WHOOSH is down
still knows whom to dial (write-then-rename: never a truncated file)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from meshcommon.models import BootstrapResponse

log = logging.getLogger(__name__)


class BootstrapCache:
    """The last good WHOOSH answer on disk, so a peer restarted while WHOOSH is down
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
