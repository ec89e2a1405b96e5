"""WHOOSH's edges to the outside: discovery sources, agent health checks, Gitea."""
