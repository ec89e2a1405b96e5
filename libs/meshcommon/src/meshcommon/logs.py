"""One log format for every service: stderr, one line per event.

stdout is left alone: the monitor writes its JSON-lines message log there.
"""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO", service: str = "") -> None:
    prefix = f"{service} " if service else ""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
        force=True,
    )
    # py-libp2p logs every failed handshake at WARNING with little context; the services
    # log the root cause themselves (see meshcommon.p2p.errors).
    for noisy in ("libp2p", "multiaddr", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(
            max(logging.getLogger().level, logging.ERROR) if noisy == "libp2p" else logging.WARNING
        )
