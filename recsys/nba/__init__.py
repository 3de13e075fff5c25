"""Next-best-action: offer catalog, eligibility rules, propensity, arbitration, contact policy and experiments."""
