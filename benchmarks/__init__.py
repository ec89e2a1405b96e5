"""``make bench``: the numbers behind the project's performance targets.

Every row of the table is measured here, on this machine, as the median of several runs,
next to its target. The services run as real processes; a benchmark may run the services
of another checkout (``--python /path/to/other/.venv/bin/python``) so that a before/after
comparison is one run on one machine. Loopback only; every run is bounded in time and
kills what it started, by PID.
"""
