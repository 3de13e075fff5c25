-- Reward stock reservation. KEYS[1]: the reward's stock hash.
-- ARGV: op ('reserve'|'release'), reservation key ('<len(customer)>:<customer>:<idempotency key>'), payload sha256, quantity.
-- Returns 'ok' | 'held' (already reserved by this key) | 'conflict' | 'unknown' | 'out_of_stock' | 'released'.
local stock, op, key, phash, qty = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local field = 'res:' .. key
local prev = redis.call('HGET', stock, field)
if op == 'reserve' then
  if prev and prev ~= 'released' then
    if prev ~= phash .. '|' .. qty then return 'conflict' end
    return 'held'
  end
  local left = redis.call('HGET', stock, 'stock')
  if not left then return 'unknown' end
  if tonumber(left) < qty then return 'out_of_stock' end
  redis.call('HINCRBY', stock, 'stock', -qty)
  redis.call('HSET', stock, field, phash .. '|' .. qty)
  return 'ok'
end
if prev == phash .. '|' .. qty then
  redis.call('HINCRBY', stock, 'stock', qty)
  redis.call('HSET', stock, field, 'released')
  return 'released'
end
return 'ok'
