"""Centric's library: data contracts, recommenders, analytics, decisions and loyalty.

Importing this package has no side effects: no I/O, no threads, no environment reads.
"""

__version__ = "0.1.0"
