"""Where agents are: pluggable discovery sources (static list, DNS, Docker Swarm API);
``factory.build_source`` picks one from the settings."""
