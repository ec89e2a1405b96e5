"""A go-libp2p peer for the interop tests: the go-libp2p daemon (p2pd) and its client."""
