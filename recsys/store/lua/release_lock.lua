-- Release the publish lock only while it holds our token. KEYS[1]: lock; ARGV[1]: token. Returns 1 | 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
