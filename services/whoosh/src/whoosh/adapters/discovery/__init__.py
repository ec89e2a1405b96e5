"""Where agents are: pluggable discovery sources (static list, DNS, Docker Swarm API, and
auto mode's Swarm-then-DNS pair); ``whoosh.wiring.build_source`` picks one from the settings."""
