--[[
  Budget periods of an account (see @latch/core's contracts/quota-period). Needs includes/clock.
  Account hash fields: "pevery" and "pzone" (a calendar period: day, week or month of an IANA
  zone), "pstart" and "pend" (its current bounds, ms); "proll" (a rolling window, ms) with its
  commits as a FIFO queue in the same hash: fields "u:<seq>" = "<ms>|<amount>" from "uh" (the
  oldest) to "ut" (the next free seq), so no key outside the account's slot is needed.

  Calendar bounds need time-zone data, which Lua has not: a script that finds the period
  ended (now >= pend) writes nothing and answers {-9, now, every, zone}; the client computes
  the period containing that server time (Intl) and runs rollPeriod-1.lua, which checks the
  bounds contain the server's now and resets spent to 0, then calls the script again. So the
  period rolls by the server's clock, and open holds (in "held") are never touched.
]]

-- The {-9, …} reply when the account's calendar period has ended at `now`, else nil.
-- `pend` is the field's stored value (or nil).
local function periodDue(accountKey, now, pend)
  if pend and now >= tonumber(pend) then
    local c = rcall("HMGET", accountKey, "pevery", "pzone")
    return {-9, integerString(now), c[1] or "", c[2] or ""}
  end
  return nil
end

-- Drops the commits a rolling window of `proll` ms has passed (up to 1000 per call; the rest
-- on the next) from spent. Returns whether spent changed.
local function rollWindow(accountKey, now, proll)
  if not proll then
    return false
  end
  local cutoff = now - tonumber(proll)
  local q = rcall("HMGET", accountKey, "uh", "ut")
  local head = tonumber(q[1]) or 0
  local tail = tonumber(q[2]) or 0
  local start = head
  while head < tail and head - start < 1000 do
    local field = "u:" .. integerString(head)
    local entry = rcall("HGET", accountKey, field)
    if entry then
      local at, amount = string.match(entry, "^(%d+)|(%d+)$")
      if tonumber(at) > cutoff then
        break
      end
      rcall("HINCRBY", accountKey, "spent", "-" .. amount)
      rcall("HDEL", accountKey, field)
    end
    head = head + 1
  end
  if head == start then
    return false
  end
  rcall("HSET", accountKey, "uh", integerString(head))
  return true
end

-- Records a commit of `amount` (integer string > 0) at `now` in a rolling window's queue.
local function recordUsage(accountKey, now, amount)
  local seq = rcall("HINCRBY", accountKey, "ut", 1) - 1
  rcall("HSET", accountKey, "u:" .. integerString(seq), integerString(now) .. "|" .. amount)
end

-- Deletes a rolling window's queue (the period changed).
local function dropUsage(accountKey)
  local q = rcall("HMGET", accountKey, "uh", "ut")
  local head = tonumber(q[1]) or 0
  local tail = tonumber(q[2]) or 0
  for seq = head, tail - 1 do
    rcall("HDEL", accountKey, "u:" .. integerString(seq))
  end
  rcall("HDEL", accountKey, "uh", "ut")
end
