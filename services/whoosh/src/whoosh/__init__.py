"""WHOOSH: discovers the CHORUS agents, polls their health, serves a deduplicated bootstrap
list from memory, and keeps the required label set on the Gitea repositories it monitors."""
