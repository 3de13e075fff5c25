-- A customer's published list and purchases recorded since, in one call (both keys share the customer's tag).
-- KEYS: the recs bucket hash, the customer's recent-purchases hash; ARGV[1]: customer id.
return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGETALL', KEYS[2])}
