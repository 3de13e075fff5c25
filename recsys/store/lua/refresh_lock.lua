-- Compare-and-extend: the TTL is extended only while the lock still holds our token. An expired lock is
-- never re-taken: another publish may have held it meanwhile and deleted our pending version's keys.
-- KEYS[1]: lock; ARGV: token, TTL (ms). Returns 1 | 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
