"""Service functions: what route handlers call. Scoring, policies and rules live here or in recsys/."""
