"""``python -m hmmm_monitor doctor --whoosh URL --monitor URL``: every fault WHOOSH and the
monitor can see, with its evidence and fix, in one report.

It talks HTTP only (``GET /api/v1/diagnosis`` of each), so it runs anywhere that reaches
the two services: a laptop, a CI job, a deploy script. The exit status is 1 when a finding
at or above ``--fail-on`` exists, 2 for a usage error. A service that cannot be asked
(unreachable, an error status, an answer that is not a diagnosis, an older version without
the endpoint) is itself a finding, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO

import httpx
from pydantic import ValidationError

from hmmm_monitor.domain.doctor_report import (
    DIAGNOSIS_FAILED,
    DIAGNOSIS_UNSUPPORTED,
    EXIT_USAGE,
    SERVICE_UNREACHABLE,
    DoctorReport,
    ServiceAnswer,
    problem,
    render_text,
)
from meshcommon.diagnosis import Diagnosis
from meshcommon.limits import BodyTooLarge, read_capped

DIAGNOSIS_PATH = "/api/v1/diagnosis"
# A diagnosis is a few KB; evidence lists are capped, so this is generous.
MAX_DIAGNOSIS_BYTES = 4 * 1024 * 1024
DEFAULT_TIMEOUT_S = 15.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hmmm_monitor doctor",
        description="Ask WHOOSH and the HMMM monitor what is wrong with the mesh, and how to "
        "fix it.",
    )
    parser.add_argument("--whoosh", metavar="URL", help="WHOOSH base URL, e.g. http://whoosh:8080")
    parser.add_argument(
        "--monitor", metavar="URL", help="monitor base URL, e.g. http://hmmm-monitor:8080"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        default="warning",
        help="exit 1 when a finding of this severity or worse exists (default: warning)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for each service (default: {DEFAULT_TIMEOUT_S:g})",
    )
    return parser


def base_url(text: str) -> str:
    """``whoosh:8080`` -> ``http://whoosh:8080``; ValueError for what is not an HTTP URL."""
    url = text.strip()
    if "://" not in url:
        url = f"http://{url}"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{text!r} is not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host or any(c.isspace() for c in url):
        raise ValueError(f"{text!r} is not an http(s) URL with a host, e.g. http://whoosh:8080")
    return url.rstrip("/")


async def ask(client: httpx.AsyncClient, service: str, url: str, timeout_s: float) -> ServiceAnswer:
    """One service's diagnosis, or the finding that says why there is none."""
    where = f"{url}{DIAGNOSIS_PATH}"
    label = "WHOOSH" if service == "whoosh" else "the monitor"
    try:
        async with (
            asyncio.timeout(timeout_s),
            client.stream("GET", where, timeout=timeout_s) as resp,
        ):
            body = await read_capped(resp, MAX_DIAGNOSIS_BYTES)
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ") or type(exc).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {timeout_s:g} s"
        return ServiceAnswer(
            service,
            url,
            problem=problem(
                SERVICE_UNREACHABLE,
                "critical",
                f"Cannot reach {label} at {url}",
                {"service": service, "url": where, "error": detail},
                f"Check the URL and that {label} is running (GET {url}/api/health).",
            ),
        )
    except BodyTooLarge as exc:
        return _bad_answer(service, url, where, resp.status_code, f"{exc}")
    if resp.status_code == 404:
        return ServiceAnswer(
            service,
            url,
            problem=problem(
                DIAGNOSIS_UNSUPPORTED,
                "warning",
                f"{label} at {url} has no {DIAGNOSIS_PATH} (an older version)",
                {"service": service, "url": where, "status": 404},
                f"Upgrade {label} to a version that serves {DIAGNOSIS_PATH}; until then "
                "its faults are not in this report.",
            ),
        )
    if resp.status_code != 200:
        return _bad_answer(service, url, where, resp.status_code, _excerpt(body))
    try:
        diagnosis = Diagnosis.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        where_bad = ".".join(str(p) for p in first["loc"]) or "<root>"
        detail = f"not a diagnosis ({where_bad}: {first['msg']}): {_excerpt(body)}"
        return _bad_answer(service, url, where, resp.status_code, detail)
    return ServiceAnswer(service, url, diagnosis=diagnosis)


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", errors="replace").replace("\n", " ").strip()
    return text + ("…" if len(body) > 200 else "")


def _bad_answer(service: str, url: str, where: str, status: int, detail: str) -> ServiceAnswer:
    label = "WHOOSH" if service == "whoosh" else "the monitor"
    return ServiceAnswer(
        service,
        url,
        problem=problem(
            DIAGNOSIS_FAILED,
            "critical",
            f"{label} at {url} did not answer with a diagnosis (HTTP {status})",
            {"service": service, "url": where, "status": status, "answer": detail},
            f"Check that {url} is {label} (not another service or a proxy's error page) "
            "and read its log for the cause.",
        ),
    )


async def gather(targets: dict[str, str], timeout_s: float) -> tuple[ServiceAnswer, ...]:
    # trust_env=False: the services are asked directly, never through an HTTP(S)_PROXY.
    async with httpx.AsyncClient(trust_env=False) as client:
        answers = await asyncio.gather(
            *(ask(client, service, url, timeout_s) for service, url in targets.items())
        )
    return tuple(answers)


def main(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage error
        return EXIT_USAGE if exc.code else 0
    try:
        targets = {
            service: base_url(url)
            for service, url in (("whoosh", args.whoosh), ("monitor", args.monitor))
            if url is not None
        }
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not targets:
        print("error: give --whoosh URL, --monitor URL, or both", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    report = DoctorReport(asyncio.run(gather(targets, args.timeout)), args.fail_on)
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        out.write(render_text(report))
    return report.exit_code
