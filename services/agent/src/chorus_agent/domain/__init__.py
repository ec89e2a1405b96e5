"""The agent's own logic, pure: no network, no clock of its own, no libp2p."""
