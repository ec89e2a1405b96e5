"""The README stays true: every setting is documented, every make target it names exists."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from settings_docs import SERVICES, env_names  # noqa: E402

README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def test_every_environment_variable_is_documented() -> None:
    missing = [
        name for cls in SERVICES.values() for name in env_names(cls) if f"`{name}`" not in README
    ]
    assert missing == [], f"README lacks {missing}: run make docs"


def test_every_make_target_in_the_readme_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, flags=re.M))
    named = set(re.findall(r"make ([a-z][a-z-]*)", README))
    assert named <= targets, f"README names missing make targets: {named - targets}"


def test_topic_names_in_the_readme_are_the_real_ones() -> None:
    from meshcommon import topics

    for topic in topics.ALL_TOPICS:
        assert topic in README
