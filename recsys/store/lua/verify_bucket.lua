-- Publish verification of one snapshot bucket. KEYS[1]: the bucket hash.
-- Returns {field count, sha1 of its fields and values as HGETALL lists them, the hash's encoding}.
local t = redis.call('HGETALL', KEYS[1])
local encoding = redis.call('OBJECT', 'ENCODING', KEYS[1])
return {#t / 2, redis.sha1hex(table.concat(t)), encoding}
