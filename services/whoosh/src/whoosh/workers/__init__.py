"""WHOOSH's background work: the agent directory's poll loop and Gitea label sync."""
