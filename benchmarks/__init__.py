"""Benchmarks that print numbers (``make bench``). Medians, one run, loopback only."""
