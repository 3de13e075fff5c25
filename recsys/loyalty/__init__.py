"""Loyalty: program definition, pure earning rules, the one loyalty flow (``flow.py``) and its Redis adapters."""
