"""``python -m whoosh`` serves the API; ``python -m whoosh labels ...`` runs the label CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["labels"]:
        # Imported here: the CLI must start without loading FastAPI and uvicorn.
        from whoosh.cli import main as labels_main

        return labels_main(argv[1:])

    from meshcommon.logs import configure_logging
    from meshcommon.serve import run_http
    from whoosh.app import create_app
    from whoosh.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, service="whoosh")
    run_http(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
