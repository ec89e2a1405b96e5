"""``python -m whoosh labels sync [--dry-run] [--fix-drift]`` and ``... labels status``.

Reads the same WHOOSH_* environment as the server, prints one row per repository and exits
1 if any repository failed (2 for a configuration problem), so it can gate a deploy script.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TextIO

from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from whoosh.domain.labels.report import BaseReport, SyncReport
from whoosh.domain.labels.required import LabelsConfigError
from whoosh.settings import Settings
from whoosh.wiring import build_label_sync
from whoosh.workers.label_sync_service import LabelSyncDisabled


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m whoosh labels",
        description="Keep WHOOSH's required labels on the repositories in WHOOSH_GITEA_REPOS.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync", help="create missing labels (and fix drift if asked)")
    sync.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    sync.add_argument(
        "--fix-drift",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also fix colour/description drift (default: WHOOSH_LABELS_FIX_DRIFT)",
    )
    sub.add_parser("status", help="show present / missing / drifted labels, change nothing")
    for command in sub.choices.values():
        command.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def render(report: BaseReport, out: TextIO) -> None:
    """A plain table: one row per repository, then each failure's message in full."""
    if isinstance(report, SyncReport):
        mode = "dry run (nothing changed)" if report.dry_run else "sync"
        print(f"label {mode}, fix drift: {'yes' if report.fix_drift else 'no'}", file=out)
        done_create = "would create" if report.dry_run else "created"
        done_update = "would update" if report.dry_run else "updated"
    else:
        print("label status (nothing changed)", file=out)
        done_create, done_update = "missing", "drifted"
    rows = [("REPOSITORY", "STATUS", "LABELS", done_create.upper(), done_update.upper())]
    for r in report.repos:
        if isinstance(report, SyncReport):
            create = r.to_create if report.dry_run else r.created
            update = r.to_update if report.dry_run else r.updated
        else:
            create, update = r.missing, [d.name for d in r.drifted]
        rows.append((r.repo, r.status, r.count, ", ".join(create) or "-", ", ".join(update) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )
    if isinstance(report, SyncReport) or any(r.drifted for r in report.repos):
        for r in report.repos:
            for d in r.drifted:
                print(
                    f"drift {r.repo} {d.name!r}: colour {d.current_color} -> {d.wanted_color}, "
                    f"description {d.current_description!r} -> {d.wanted_description!r}",
                    file=out,
                )
    for r in report.repos:
        if r.error:
            print(f"error: {r.error}", file=out)  # messages already name the repository
    print(
        f"{report.repos_complete}/{len(report.repos)} repositories complete, "
        f"{report.repos_failed} failed",
        file=out,
    )


async def _run(args: argparse.Namespace, settings: Settings) -> BaseReport:
    service = build_label_sync(settings, CollectorRegistry())
    try:
        if args.command == "status":
            return await service.status()
        return await service.sync(dry_run=args.dry_run, fix_drift=args.fix_drift)
    finally:
        await service.stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["labels"]:  # tolerate being handed the whole `whoosh labels ...` argv
        argv = argv[1:]
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        report = asyncio.run(_run(args, settings))
    except (LabelSyncDisabled, LabelsConfigError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        render(report, sys.stdout)
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover - `python -m whoosh labels` is the entry point
    sys.exit(main(sys.argv[1:]))
