"""Offline jobs and the ``centric`` command-line interface."""
