"""Each service does what its OpenAPI document says: Schemathesis, with every check it has,
against the three services running as real processes (2 agents, WHOOSH with label sync
against a Gitea stand-in, the monitor).

Every response must be documented (status, content type, headers, schema), invalid input
must be refused with a 4xx and valid input accepted, and nothing may answer 5xx unless its
document says so (the health endpoints' 503)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshlocal import LocalMesh, MeshLayout

from .fake_gitea import fake_gitea

pytestmark = pytest.mark.integration

# Per operation; with the phases below it keeps the three runs near a minute.
MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def api_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    layout = MeshLayout(
        agents=2,
        agent_net="127.0.140",
        whoosh_ip="127.0.141.2",
        monitor_ip="127.0.141.3",
        broadcast_interval_s=3.0,
    )
    with fake_gitea("127.0.141.9") as gitea_url:
        mesh = LocalMesh(
            layout,
            run_dir=tmp_path_factory.mktemp("openapi"),
            extra_env={
                "whoosh": {
                    "WHOOSH_GITEA_URL": gitea_url,
                    "WHOOSH_GITEA_TOKEN": "gitea-token-for-the-stand-in",
                    "WHOOSH_GITEA_REPOS": "chorus/WHOOSH,chorus/CHORUS",
                    "WHOOSH_LABELS_SYNC_ON_START": "false",
                }
            },
        )
        try:
            mesh.start()
            cov = f"{layout.monitor_url}/api/v1/coverage"
            mesh.wait_for(
                lambda: mesh.get_json(cov)["heard"] == 2, timeout=180, what="both agents heard"
            )
            yield mesh
        finally:
            mesh.stop()


def _schemathesis(base_url: str, token: str, report_dir: Path) -> tuple[int, str, float]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--workers",
        "2",
        # A long-polled bootstrap list may be held up to 30 s (Prefer: wait=30).
        "--request-timeout",
        "40",
        "--seed",
        "7",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    started = time.monotonic()
    # Run in report_dir: Schemathesis keeps a cache of the failures it found in the working
    # directory, which would otherwise land in the repository and replay across runs.
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, check=False, cwd=report_dir
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.mark.parametrize("service", ["whoosh", "hmmm-monitor", "agent-01"])
def test_every_response_is_what_the_openapi_document_says(
    api_mesh: LocalMesh, service: str, tmp_path: Path
) -> None:
    url = api_mesh.service(service).url
    code, output, took = _schemathesis(url, api_mesh.admin_token, tmp_path)
    cases = re.search(r"(\d+) generated", output)
    print(
        f"schemathesis against {service}: exit {code} in {took:.0f} s, "
        f"{cases.group(1) if cases else '?'} test cases"
    )
    assert code == 0, output[-8000:]
    # Every operation of the document was exercised, none skipped.
    selected, tested = (
        re.search(r"Selected: (\d+)/(\d+)", output),
        re.search(r"Tested: (\d+)", output),
    )
    assert selected and tested, output[-4000:]
    assert int(tested.group(1)) == int(selected.group(2)) > 0, output[-4000:]
