"""Benchmarks: scripts that print a table (run one with ``python -m benchmarks.<name>``, all with ``make bench``)."""
