"""The label set WHOOSH requires on every monitored Gitea repository, defined once.

``chorus-entrypoint`` is the label that triggers council formation for project kickoffs: a
repository without it cannot start a council, so it is part of the set like the eight
common ones. Deployments can add labels through ``WHOOSH_LABELS_EXTRA`` but cannot redefine
or drop the built-in ones, so every WHOOSH in the mesh agrees on what the nine mean.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


class LabelsConfigError(ValueError):
    """The configured label set is unusable; the message says which setting and why."""


def normalize_color(value: str) -> str:
    """``'FF6B6B'``, ``'#ff6b6b'`` -> ``'#ff6b6b'``. Gitea returns colours with or without
    '#' depending on its version, so everything is compared in this one form."""
    match = _HEX.match(value.strip())
    if not match:
        raise ValueError(f"colour {value!r} is not a hex colour like #1d76db")
    return "#" + match.group(1).lower()


def _non_empty(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("label name is empty")
    return name


class LabelSpec(BaseModel):
    """One required label: name, colour ('#rrggbb', lower case) and description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, AfterValidator(_non_empty)]
    color: Annotated[str, AfterValidator(normalize_color)]
    description: str = ""


REQUIRED_LABELS: tuple[LabelSpec, ...] = (
    LabelSpec(name="bug", color="#d73a4a", description="Something isn't working"),
    LabelSpec(
        name="bzzz-task",
        color="#5319e7",
        description="Task for CHORUS agents to pick up and coordinate on",
    ),
    LabelSpec(
        name="chorus-entrypoint",
        color="#ff6b6b",
        description="Triggers council formation for project kickoffs",
    ),
    LabelSpec(
        name="duplicate", color="#cfd3d7", description="This issue or pull request already exists"
    ),
    LabelSpec(name="enhancement", color="#a2eeef", description="New feature or request"),
    LabelSpec(name="help wanted", color="#008672", description="Extra attention is needed"),
    LabelSpec(name="invalid", color="#e4e669", description="This doesn't seem right"),
    LabelSpec(name="question", color="#d876e3", description="Further information is requested"),
    LabelSpec(name="wontfix", color="#ffffff", description="This will not be worked on"),
)


def parse_extra_labels(raw: str) -> list[LabelSpec]:
    """Parse ``WHOOSH_LABELS_EXTRA`` (a JSON list of {name, color, description})."""
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LabelsConfigError(f"WHOOSH_LABELS_EXTRA is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, list):
        raise LabelsConfigError(
            'WHOOSH_LABELS_EXTRA must be a JSON list like [{"name": "triage", '
            '"color": "#fbca04", "description": "..."}]'
        )
    specs = []
    for index, item in enumerate(data, start=1):
        try:
            specs.append(LabelSpec.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors()
            )
            raise LabelsConfigError(f"WHOOSH_LABELS_EXTRA item {index}: {problems}") from exc
    return specs


def required_labels(labels_extra: str) -> tuple[LabelSpec, ...]:
    """The built-in set plus ``WHOOSH_LABELS_EXTRA``; raises LabelsConfigError if unusable."""
    result = list(REQUIRED_LABELS)
    # Case-insensitive: 'Bug' and 'bug' would look like one label on an issue, and the plan
    # matches existing labels the same way (see plan.plan_repo).
    seen = {spec.name.casefold() for spec in result}
    for spec in parse_extra_labels(labels_extra):
        key = spec.name.casefold()
        if key in seen:
            raise LabelsConfigError(
                f"WHOOSH_LABELS_EXTRA: label {spec.name!r} is already in the required set; "
                "extra labels can only add new names"
            )
        seen.add(key)
        result.append(spec)
    return tuple(result)
