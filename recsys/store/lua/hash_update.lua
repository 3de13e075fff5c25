-- Apply a list of changes to one hash atomically. KEYS[1]: the hash.
-- ARGV: triples (op, field, value): 'incr' adds value to field; 'max' sets field to value only when value is
-- later (greater) than the stored one, so a late event with an older time never moves it back; 'expire' sets
-- the key's TTL to value seconds (field unused). Returns 1.
local key = KEYS[1]
for i = 1, #ARGV, 3 do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'incr' then
    redis.call('HINCRBY', key, field, value)
  elseif op == 'max' then
    local cur = tonumber(redis.call('HGET', key, field) or '')
    if not cur or tonumber(value) > cur then redis.call('HSET', key, field, value) end
  elseif op == 'expire' then
    redis.call('EXPIRE', key, value)
  else
    return redis.error_reply('hash_update: unknown op ' .. op)
  end
end
return 1
