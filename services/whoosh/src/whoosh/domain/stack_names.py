"""Names under a stack prefix: ``docker stack deploy -c stack.yml CHORUS`` names the service
``chorus`` ``CHORUS_chorus`` and the network ``chorus_net`` ``CHORUS_chorus_net``; WHOOSH's
settings name them without the prefix, and accept them with any."""

from __future__ import annotations


def matches_stack_name(actual: str, wanted: str) -> bool:
    """``CHORUS_chorus`` matches ``chorus``; so does ``chorus`` itself."""
    return actual == wanted or actual.endswith(f"_{wanted}")


def without_stack_prefix(name: str, stack: str) -> str:
    """``CHORUS_chorus_net`` of stack ``CHORUS`` is ``chorus_net``; a name without that
    prefix (or of no stack) stays as it is."""
    prefix = f"{stack}_"
    return name[len(prefix) :] if stack and name.startswith(prefix) else name
