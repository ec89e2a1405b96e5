"""The agent's background loops: they call the domain and the libp2p runtime."""
