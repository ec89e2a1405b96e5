"""``python -m whoosh`` serves the API; ``python -m whoosh labels ...`` runs the label CLI."""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["labels"]:
        from whoosh.labels.cli import main as labels_main

        return labels_main(argv[1:])

    import uvicorn

    from whoosh.app import create_app
    from whoosh.settings import Settings

    settings = Settings()
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # log_config=None: uvicorn's loggers propagate to the root handler above (one format).
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
