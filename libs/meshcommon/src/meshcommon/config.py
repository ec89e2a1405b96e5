"""Pieces every service's pydantic-settings ``Settings`` uses."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator
from pydantic_settings import NoDecode


def split_comma_list(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    return value


# A list read from one environment variable as comma-separated values (not JSON).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_comma_list)]
