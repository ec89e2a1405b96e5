"""The one py-libp2p version meshcommon's overrides were written against, checked at start.

The overrides (``meshcommon.p2p.overrides``) copy and patch py-libp2p 0.8.1 code, down to
private names; ``lean`` follows 0.8.1's module layout. On another version they may still
run and quietly do the wrong thing, so another version stops the process at start with one
line (``Libp2pVersionError``, a ``SystemExit``: no traceback, exit status 1).

Escape hatch for whoever is porting the overrides to a new py-libp2p:
``MESH_LIBP2P_UNPINNED=1`` turns the error into a warning (and ``lean`` imports the full
library); then run ``libs/meshcommon/tests/p2p/test_fingerprints.py``, which names every
upstream function that changed and the overrides that copy it.

Importable without libp2p (only package metadata is read).
"""

from __future__ import annotations

import os
import warnings
from typing import Final

PINNED_LIBP2P_VERSION: Final = "0.8.1"
UNPINNED_ENV: Final = "MESH_LIBP2P_UNPINNED"


class Libp2pVersionError(SystemExit):
    """py-libp2p is installed in another version than the pinned one."""


def installed_libp2p_version() -> str | None:
    """The installed ``libp2p`` distribution's version; None when it is not installed
    (meshcommon without its ``p2p`` extra, as WHOOSH runs it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("libp2p")
    except PackageNotFoundError:
        return None


def unpinned() -> bool:
    return os.environ.get(UNPINNED_ENV, "") in ("1", "true", "yes")


def version_problem(found: str | None) -> str | None:
    """The one-line complaint about ``found``, or None when it is the pinned version (or
    libp2p is absent)."""
    if found is None or found == PINNED_LIBP2P_VERSION:
        return None
    return (
        f"meshcommon.p2p: py-libp2p {found} is installed, but its overrides are written "
        f"against {PINNED_LIBP2P_VERSION} only (pin libp2p=={PINNED_LIBP2P_VERSION}; to try "
        f"another version set {UNPINNED_ENV}=1 and run "
        "libs/meshcommon/tests/p2p/test_fingerprints.py)"
    )


def check_libp2p_version(found: str | None = None) -> bool:
    """Raise ``Libp2pVersionError`` unless the pinned py-libp2p (or none) is installed.
    With ``MESH_LIBP2P_UNPINNED=1``: a warning instead, and False. True: pinned (or no
    libp2p at all)."""
    problem = version_problem(installed_libp2p_version() if found is None else found)
    if problem is None:
        return True
    if unpinned():
        warnings.warn(f"{problem} [{UNPINNED_ENV} set: continuing]", stacklevel=2)
        return False
    raise Libp2pVersionError(problem)
