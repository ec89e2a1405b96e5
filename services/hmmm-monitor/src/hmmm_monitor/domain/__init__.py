"""The monitor's own logic, pure: what it heard, whom it expects, coverage, topology."""
