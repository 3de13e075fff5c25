"""Loyalty: program definition, pure earning rules, and the atomic Redis ledger (``ledger.py``, Lua in ``lua/``)."""
