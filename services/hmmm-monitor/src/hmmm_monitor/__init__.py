"""HMMM monitor: a read-only libp2p subscriber that dials WHOOSH's bootstrap list, logs every
gossip message as a JSON line, and reports coverage (expected / connected / heard), peer
quality and the mesh topology over HTTP.

Domain modules (``store``, ``coverage``, ``topology``, the state part of ``connections``) are
plain Python; ``bootstrap`` and ``connections`` talk to the outside world through small
interfaces so tests can swap them; ``consumer``, ``api`` and ``app`` only compose.
"""

__version__ = "0.1.0"
