-- One customer's ledger step. KEYS: account, lots, entries, idempotency, orders (all one hash tag).
-- ARGV: op, idempotency key, payload sha256, now (epoch s), customer id, params JSON.
-- Returns {status, json}: status 'ok' | 'replay' | 'conflict' | 'insufficient' | 'unknown_order' | 'duplicate_order'.
-- 'insufficient' is recorded under the key: a retry of a refused debit is refused again, never applied.
local acct, lots, entries, idem, orders = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, key, phash, now, customer = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local p = cjson.decode(ARGV[6])

if key ~= '' then
  local prev = redis.call('HGET', idem, key)
  if prev then
    local sep = string.find(prev, '|', 1, true)
    if string.sub(prev, 1, sep - 1) ~= phash then return {'conflict', ''} end
    local rest = string.sub(prev, sep + 1)
    -- a refusal recorded under this key ('!insufficient|<json>') answers every retry the same way
    if string.sub(rest, 1, 1) == '!' then
      local bar = string.find(rest, '|', 2, true)
      return {string.sub(rest, 2, bar - 1), string.sub(rest, bar + 1)}
    end
    return {'replay', rest}
  end
end

local function num(field) return tonumber(redis.call('HGET', acct, field) or '0') end

local function append(entry)
  local seq = redis.call('HINCRBY', acct, 'seq', 1)
  entry.id = customer .. ':' .. seq
  entry.customer_id = customer
  entry.at = now
  redis.call('RPUSH', entries, cjson.encode(entry))
  return entry
end

-- Lots that reached their expiry are expired first, so every step sees a true balance.
local due = redis.call('ZRANGEBYSCORE', lots, '-inf', now)
local expired = 0
for _, exp in ipairs(due) do
  local left = tonumber(redis.call('HGET', acct, 'lot:' .. exp) or '0')
  redis.call('HDEL', acct, 'lot:' .. exp)
  redis.call('ZREM', lots, exp)
  if left > 0 then
    redis.call('HINCRBY', acct, 'balance', 0 - left)
    append({type = 'expire', amount = 0 - left, reason = 'points expired', source = exp, idempotency_key = ''})
    expired = expired + left
  end
end

-- Burn closest-to-expiry lots first.
local function burn(n)
  if n <= 0 then return end
  local all = redis.call('ZRANGE', lots, 0, -1)
  for _, exp in ipairs(all) do
    local left = tonumber(redis.call('HGET', acct, 'lot:' .. exp) or '0')
    local take = math.min(left, n)
    if take == left then
      redis.call('HDEL', acct, 'lot:' .. exp)
      redis.call('ZREM', lots, exp)
    else
      redis.call('HINCRBY', acct, 'lot:' .. exp, 0 - take)
    end
    n = n - take
    if n == 0 then break end
  end
  if n > 0 then error('ledger lots short of balance by ' .. n) end
end

local function credit(n, exp)
  if n <= 0 then return end
  redis.call('ZADD', lots, exp, exp)
  redis.call('HINCRBY', acct, 'lot:' .. exp, n)
  redis.call('HINCRBY', acct, 'balance', n)
end

-- Debt (points reversed after they were spent) is paid off by future credits first.
local function pay_debt(n)
  local debt = num('debt')
  local pay = math.min(debt, n)
  if pay > 0 then redis.call('HINCRBY', acct, 'debt', 0 - pay) end
  return pay
end

local function qualified(window)
  local earned = 0
  for _, m in ipairs(window) do earned = earned + tonumber(redis.call('HGET', acct, 'em:' .. m) or '0') end
  local best = 0
  for i, t in ipairs(p.thresholds) do if earned >= t then best = i - 1 end end
  return best
end

local entry
if op == 'expire' then
  local tier = num('tier')
  if p.thresholds then
    -- Period-end review: keep the best tier any window ending in the last grace months (now included) qualifies
    -- for, never above the tier held (tiers rise on earn, not on a review).
    local keep = 0
    for _, window in ipairs(p.windows) do keep = math.max(keep, qualified(window)) end
    keep = math.min(keep, tier)
    if keep ~= tier then redis.call('HSET', acct, 'tier', keep) end
    tier = keep
  end
  return {'ok', cjson.encode({expired = expired, balance = num('balance'), tier = tier})}
elseif op == 'earn' then
  if redis.call('HEXISTS', orders, p.order_id) == 1 then return {'duplicate_order', ''} end
  local tier = num('tier')
  local pts = p.points[tier + 1]
  if num('orders') == 0 then pts = pts + p.bonus end
  if p.cap > 0 and pts > p.cap then pts = p.cap end
  local pay = pay_debt(pts)
  credit(pts - pay, p.expiry)
  redis.call('HINCRBY', acct, 'orders', 1)
  redis.call('HINCRBY', acct, 'em:' .. p.month, pts)
  redis.call('HSET', orders, p.order_id, cjson.encode({earned = pts, reversed = 0, cents = p.cents, returned = 0, month = p.month,
                                                         exp = p.expiry}))
  -- Tier rises as soon as points earned in the rolling window qualify; never on the spendable balance.
  local earned = 0
  for _, m in ipairs(p.window) do earned = earned + tonumber(redis.call('HGET', acct, 'em:' .. m) or '0') end
  local best = tier
  for i, t in ipairs(p.thresholds) do if earned >= t and i - 1 > best then best = i - 1 end end
  if best > tier then redis.call('HSET', acct, 'tier', best) end
  entry = append({type = 'earn', amount = pts - pay, points = pts, debt_paid = pay, reason = p.reason,
                  source = p.order_id, idempotency_key = key})
elseif op == 'redeem' or (op == 'adjust' and p.amount < 0) then
  local total = op == 'redeem' and p.cost * p.quantity or -p.amount
  local balance = num('balance')
  if balance < total then
    local info = cjson.encode({balance = balance, needed = total})
    -- Recorded: a retry of this key that races the refused original (or follows a later earn) must not
    -- debit, because the original's stock reservation was released when it was refused.
    if key ~= '' then redis.call('HSET', idem, key, phash .. '|!insufficient|' .. info) end
    return {'insufficient', info}
  end
  burn(total)
  redis.call('HINCRBY', acct, 'balance', 0 - total)
  entry = append({type = op, amount = 0 - total, reason = p.reason, source = p.source, idempotency_key = key})
elseif op == 'reverse' then
  local raw = redis.call('HGET', orders, p.order_id)
  if not raw then return {'unknown_order', ''} end
  local o = cjson.decode(raw)
  -- Cumulative proportion: the sum of partial reversals never exceeds (and at 100% equals) what was earned.
  local returned = o.cents
  if not p.all then returned = math.min(o.cents, o.returned + p.cents) end
  local target = o.earned
  if o.cents > 0 then target = math.floor(o.earned * returned / o.cents) end
  local pts = target - o.reversed
  o.reversed, o.returned = target, returned
  redis.call('HSET', orders, p.order_id, cjson.encode(o))
  redis.call('HINCRBY', acct, 'em:' .. o.month, 0 - pts)
  local take, shortfall, reason = 0, 0, p.reason
  if o.exp and o.exp <= now then
    -- The order's points reached their expiry date: they left the balance then (expired or spent before), so
    -- taking them again from later points or as debt would charge them twice. Only the tier window changes.
    reason = p.reason .. ' after its points expired'
  else
    take = math.min(pts, num('balance'))
    burn(take)
    redis.call('HINCRBY', acct, 'balance', 0 - take)
    shortfall = pts - take
    if shortfall > 0 then redis.call('HINCRBY', acct, 'debt', shortfall) end
  end
  entry = append({type = 'reverse', amount = 0 - take, points = pts, shortfall = shortfall, reason = reason,
                  source = p.order_id, idempotency_key = key})
else -- grant / positive adjust
  local pay = pay_debt(p.amount)
  credit(p.amount - pay, p.expiry)
  entry = append({type = op, amount = p.amount - pay, points = p.amount, debt_paid = pay, reason = p.reason,
                  source = p.source, idempotency_key = key})
end

local result = cjson.encode({entry = entry, balance = num('balance'), debt = num('debt'), tier = num('tier')})
if key ~= '' then redis.call('HSET', idem, key, phash .. '|' .. result) end
return {'ok', result}
