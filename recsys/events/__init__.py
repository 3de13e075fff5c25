"""Events from the service, kept: the durable event store, its sync from Redis, and the history built on it."""
