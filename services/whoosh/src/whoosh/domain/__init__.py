"""WHOOSH's own logic, pure: no network, no clock of its own, no Docker, no Gitea."""
