"""HMMM monitor: a read-only libp2p subscriber that dials WHOOSH's bootstrap list, logs every
gossip message as a JSON line, and reports coverage (expected / connected / heard), peer
quality and the mesh topology over HTTP."""
