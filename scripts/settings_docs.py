"""Print the configuration tables of the README from the services' Settings classes.

``python scripts/settings_docs.py`` prints markdown; ``--write`` (``make docs``) updates the
README between its markers. tests/docs/test_readme.py checks that the README names every
variable, so the tables cannot silently fall behind the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from chorus_agent.settings import Settings as AgentSettings
from hmmm_monitor.settings import Settings as MonitorSettings
from whoosh.settings import Settings as WhooshSettings

SERVICES: dict[str, type[BaseSettings]] = {
    "CHORUS agent (`python -m chorus_agent`)": AgentSettings,
    "WHOOSH (`python -m whoosh`)": WhooshSettings,
    "HMMM monitor (`python -m hmmm_monitor`)": MonitorSettings,
}


def env_names(cls: type[BaseSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper() for name in cls.model_fields]


def _default(field: object) -> str:
    factory = getattr(field, "default_factory", None)
    if factory is not None:
        try:
            value = factory()
        except Exception:  # a doc generator must not fail on odd defaults
            return "(computed)"
        if callable(getattr(value, "__iter__", None)) and not isinstance(value, str):
            return ",".join(map(str, value)) or "(empty)"
        return "(hostname)" if "gethostname" in repr(factory) else str(value)
    value = getattr(field, "default", None)
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    return str(value)


def table(cls: type[BaseSettings]) -> str:
    prefix = cls.model_config.get("env_prefix", "")
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        desc = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{prefix}{name}`".upper().replace("| `", "| `")
            + f" | `{_default(field)}` | {desc} |"
        )
    return "\n".join(rows)


BEGIN = "<!-- settings:begin (python scripts/settings_docs.py) -->\n"
END = "<!-- settings:end -->"


def tables() -> str:
    return "".join(f"#### {title}\n\n{table(cls)}\n\n" for title, cls in SERVICES.items())


def write_readme(path: Path) -> None:
    """Replace the README's settings section (between the markers) with fresh tables."""
    text = path.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + tables() + text[end:])


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_readme(Path(__file__).resolve().parents[1] / "README.md")
    else:
        print(tables(), end="")
