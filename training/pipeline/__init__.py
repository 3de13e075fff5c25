"""The daily cycle: ``centric pipeline run|status``."""
