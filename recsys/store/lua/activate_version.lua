-- Make a snapshot version active: the only step of a publish that serving can see.
-- KEYS: pointer, versions (sorted set), pending (set), the version's meta hash, publish lock (all tag {snap}).
-- ARGV: version, publish time (epoch s), '1' for a new publish (must still hold the lock) | '0' for a kept version.
if ARGV[3] == '1' and redis.call('GET', KEYS[5]) ~= ARGV[1] then
  return redis.error_reply('publish lock lost: another publish took over')
end
if ARGV[3] == '0' and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return redis.error_reply('version is not kept')
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1]) end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], 'status', 'active')
return 1
