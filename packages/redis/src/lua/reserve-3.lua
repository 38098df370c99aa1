--[[
  Reserves quota: checks the limit and creates a hold atomically, retry-safe by holdId.

  On a standalone server KEYS[3] is the holdId's one record key (whichever account holds it),
  so a reserve is this one script: a record of another account is an idempotency conflict,
  and a denied reserve writes nothing. On a Cluster KEYS[3] is the record of this account
  and holdId (in the account's slot), and the client sends the holdId locator's
  `SET … NX GET` beside this script.

  Input:
    KEYS[1] account hash (limit, spent, held, due)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] hold record (string "<state>|<amount>|<actual>|<account>")

    ARGV[1] holdId
    ARGV[2] amount, integer string > 0
    ARGV[3] ttlMs, integer string > 0
    ARGV[4] hold record TTL in ms while held (ttlMs + retention), integer string
    ARGV[5] account

  Output:
     remaining            granted: a new hold. The common case answers a plain integer, not an
                          array (Redis converts a Lua table reply field by field, which costs
                          about as much as one of the script's commands)
     {2, remaining}       granted before: a retry (same answer, held once)
     {0, remaining}       insufficient: nothing is held, nothing written
    {-1, stored}          idempotency conflict: reserved on this account with another amount
    {-1, stored, owner}   idempotency conflict: account `owner` holds this holdId (amount
                          `stored`); nothing is written
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

local now = nowMs()
local amount = ARGV[2]
local v = rcall("HMGET", KEYS[1], "limit", "spent", "held", "due")
local swept, due = sweepExpired(KEYS[1], KEYS[2], now, v[4])
if swept then
  v = rcall("HMGET", KEYS[1], "limit", "spent", "held")
end
local room = roomOf(v)

-- The record is created only when there is room (NX: never over an existing one, whose value
-- GET returns instead), so a denied reserve, a retry and a conflict write nothing.
local stored
if tonumber(amount) <= room then
  stored = rcall("SET", KEYS[3], "held|" .. amount .. "||" .. ARGV[5], "NX", "GET", "PX", ARGV[4])
  if not stored then
    local expiresAt = now + tonumber(ARGV[3])
    rcall("ZADD", KEYS[2], integerString(expiresAt), amount .. "|" .. ARGV[1])
    rcall("HINCRBY", KEYS[1], "held", amount)
    if not due or expiresAt < due then
      rcall("HSET", KEYS[1], "due", integerString(expiresAt))
    end
    return room - tonumber(amount)
  end
else
  stored = rcall("GET", KEYS[3])
  if not stored then
    return {0, room}
  end
end

-- The holdId has a record already: a retry (same account and amount) or a conflict.
local hold = splitHold(stored)
if hold[4] ~= ARGV[5] then
  return {-1, hold[2], hold[4]}
end
if hold[2] ~= amount then
  return {-1, hold[2]}
end
return {2, room}
