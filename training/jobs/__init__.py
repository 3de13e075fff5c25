"""Offline jobs: plain functions that the CLI commands and the demo call."""
