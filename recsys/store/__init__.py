"""The store seam: Redis key names, the embedded Redis, and store implementations."""
