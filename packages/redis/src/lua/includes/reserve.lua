--[[
  The reserve itself, shared by reserve-3 (a Cluster: the locator is written by the client)
  and reserveLocated-5 (a standalone server: the locator is written in the same script).
  Needs includes/clock and includes/holds. Every key is a parameter (never built here).

  Returns {1, remaining} granted (a new hold), {2, remaining} granted before (a retry, held
  once), {0, remaining} insufficient (nothing held), {-1, stored} idempotency conflict (the
  holdId was reserved on this account with another amount).
]]
local function reserveHold(accountKey, expiryKey, recordKey, holdId, amount, ttlMs, recordTtlMs)
  local now = nowMs()
  sweepExpired(accountKey, expiryKey, now)

  local stored = rcall("GET", recordKey)
  if stored then
    local hold = splitHold(stored)
    if hold[2] ~= amount then
      return {-1, hold[2]}
    end
    return {2, availableUnits(accountKey)}
  end

  local room = availableUnits(accountKey)
  if tonumber(amount) > room then
    return {0, room}
  end

  rcall("SET", recordKey, "held|" .. amount .. "|", "PX", recordTtlMs)
  rcall("ZADD", expiryKey, integerString(now + tonumber(ttlMs)), amount .. "|" .. holdId)
  rcall("HINCRBY", accountKey, "held", amount)
  return {1, room - tonumber(amount)}
end
