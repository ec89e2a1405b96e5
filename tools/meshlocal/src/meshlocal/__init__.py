"""Local, Docker-free runs of the whole mesh: N agents, WHOOSH and the monitor as real
processes, each on its own loopback address (127.0.0.0/8 is all loopback on Linux)."""

from meshlocal.launcher import LocalMesh, MeshLayout, ServiceProcess

__all__ = ["LocalMesh", "MeshLayout", "ServiceProcess"]
