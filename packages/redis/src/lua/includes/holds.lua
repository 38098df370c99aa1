--[[
  Holds. An account's active holds live in one sorted set: member "<amount>|<holdId>", scored
  by the hold's expiry in ms. Membership is the single source of truth for "counted in held":
  whoever removes a member releases its amount, so a hold is released exactly once, by void,
  commit or expiry, whichever comes first.

  A hold's record is one string key (set with its TTL in the same command):
  "<state>|<amount>|<actual>", state held, committed or voided; amounts are integer strings,
  so "|" never occurs inside a field. The account is implied by the key (and checked by the
  holdId locator), so the amount alone identifies a reserve request, and the actual amount a
  commit.
]]
local function splitHold(value)
  return {string.match(value, "^([^|]*)|([^|]*)|(.*)$")}
end

-- amount is the integer string stored with the hold: it is never converted to a number.
local function releaseHold(accountKey, expiryKey, holdId, amount)
  if rcall("ZREM", expiryKey, amount .. "|" .. holdId) == 1 then
    rcall("HINCRBY", accountKey, "held", "-" .. amount)
    return true
  end
  return false
end

-- Releases up to 1000 expired holds per call (bounded work per script; the rest follow on
-- the next call, and until then they are still counted, which errs towards denying).
local function sweepExpired(accountKey, expiryKey, now)
  local expired = rcall("ZRANGEBYSCORE", expiryKey, "-inf", integerString(now), "LIMIT", 0, 1000)
  for _, member in ipairs(expired) do
    rcall("ZREM", expiryKey, member)
    rcall("HINCRBY", accountKey, "held", "-" .. string.match(member, "^(%d+)|"))
  end
end

-- max(0, limit - spent - held). Each field is a safe integer, so doubles hold them exactly,
-- and a result below -2^53 (inexact) is clamped to 0 anyway.
local function availableUnits(accountKey)
  local v = rcall("HMGET", accountKey, "limit", "spent", "held")
  local room = (tonumber(v[1]) or 0) - (tonumber(v[2]) or 0) - (tonumber(v[3]) or 0)
  if room < 0 then
    return 0
  end
  return room
end
