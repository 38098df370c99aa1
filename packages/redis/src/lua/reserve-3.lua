--[[
  Reserves quota: checks the limit and creates a hold atomically, retry-safe by holdId.

  On a standalone server KEYS[3] is the holdId's one record key (whichever account holds it),
  so a reserve is this one script: a record of another account is an idempotency conflict,
  and a denied reserve writes nothing. On a Cluster KEYS[3] is the record of this account
  and holdId (in the account's slot), and the client sends the holdId locator's
  `SET … NX GET` beside this script.

  A retry never answers "granted" for a hold that is not counted: a retry after the hold
  expired holds it again (a fresh ttlMs) when there is room, else it is denied. A retry whose
  record is gone (evicted by a maxmemory-policy, lost in a failover) while the hold is still
  counted is recognised by the hold's member in KEYS[2] (ZADD NX adds nothing) and is not
  counted twice; with ARGV[7], a hold resolved before is recognised by its settled marker.

  A "unavailable" answer leaves no hold behind. Each reserve call sends a token (ARGV[6]) that
  the hold's record keeps while that call is the only one that created or answered it
  ("held|<amount>|<token>|<account>"). A call answered "unavailable" (its deadline passed
  first, or no reply) then runs unreserve-3.lua with its token: it takes the hold back only
  while the record still carries that token, and otherwise (no record yet) leaves a tombstone
  "abandoned|<amount>|<token>|<account>" that makes this script refuse that call's late send
  ({4, …}, nothing written). Any other call that answers a held record (a replay, a hold held
  again after expiry, a record put back) clears the token, since its caller may be told
  "granted": such a hold is never taken back. A tombstone of another token counts as no record.

  A calendar period that has ended is rolled first (see includes/period: the script answers
  {-9, …} and writes nothing); a rolling window drops the commits it has passed.

  Input:
    KEYS[1] account: account hash (limit, spent, held, due; settled markers "settled:<holdId>";
            period fields, see includes/period)
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] record: hold record (string "<state>|<amount>|<actual>|<account>")

    ARGV[1] holdId
    ARGV[2] amount: the amount to hold, integer string > 0
    ARGV[3] ttlMs: how long the hold counts, in ms, integer string > 0
    ARGV[4] recordTtlMs: hold record TTL in ms while held (ttlMs + retention), integer string
    ARGV[5] account
    ARGV[6] token: this reserve call's token (no "|"; "" for a hold never taken back), see above
    ARGV[7] retentionMs?: the retention in ms, when settled markers are kept (see includes/holds)

  Output:
     remaining            granted: a new hold, or an expired one held again. The common case
                          answers a plain integer, not an array (Redis converts a Lua table
                          reply field by field, which costs about as much as one of the
                          script's commands)
     {2, remaining}       granted before: a retry of a hold still counted (same answer, held
                          once)
     {3, remaining}       granted before and resolved (committed or voided) since: the same
                          answer, nothing more held
     {0, remaining}       insufficient: nothing is held, nothing written
     {4, remaining}       abandoned: this call (token ARGV[6]) was answered "unavailable" and
                          taken back already (a tombstone); nothing is held, nothing written
    {-1, stored}          idempotency conflict: reserved on this account with another amount
    {-1, stored, owner}   idempotency conflict: account `owner` holds this holdId (amount
                          `stored`); nothing is written
    {-9, now, every, zone}  the account's calendar period ended at the server time `now`:
                          nothing is written; roll it (rollPeriod-1.lua) and call again
]]
local rcall = redis.call

-- The common case (a new hold, on an account with no period and no sweep due) runs inline
-- below, with no function of its own: creating a closure on every call costs about as much as
-- one of the script's commands. Everything else uses the includes' functions and this
-- script's own (addHold, keepForGood, ownTombstone), built on first use by library(); they
-- read the call's state from these locals (upvalues, so they see the latest values).
local now, amount, member, due
local lib
local function library()
  if not lib then
    --- @include "includes/clock"
    --- @include "includes/holds"
    --- @include "includes/period"

    -- Counts the hold until now + ttlMs; false when its member is there already (still counted).
    local function addHold()
      local expiresAt = now + tonumber(ARGV[3])
      if rcall("ZADD", KEYS[2], "NX", integerString(expiresAt), member) == 0 then
        return false
      end
      rcall("HINCRBY", KEYS[1], "held", amount)
      if not due or expiresAt < due then
        rcall("HSET", KEYS[1], "due", integerString(expiresAt))
      end
      return true
    end

    -- The held record without a token: a hold some caller may have been told is granted,
    -- never taken back by unreserve-3.lua.
    local function keepForGood(pexpire)
      if pexpire then
        rcall("SET", KEYS[3], "held|" .. amount .. "||" .. ARGV[5], "PX", ARGV[4])
      else
        rcall("SET", KEYS[3], "held|" .. amount .. "||" .. ARGV[5], "KEEPTTL")
      end
    end

    -- A tombstone (see above) of this call refuses it; another call's counts as no record.
    local function ownTombstone(value)
      return string.sub(value, 1, 10) == "abandoned|" and ARGV[6] ~= "" and splitHold(value)[3] == ARGV[6]
    end

    lib = {
      addHold = addHold,
      keepForGood = keepForGood,
      ownTombstone = ownTombstone,
      splitHold = splitHold,
      releaseHold = releaseHold,
      sweepExpired = sweepExpired,
      roomOf = roomOf,
      settled = SETTLED,
      periodDue = periodDue,
      rollWindow = rollWindow,
    }
  end
  return lib
end

-- includes/clock's nowMs (inline).
local time = rcall("TIME")
now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
amount = ARGV[2]
member = amount .. "|" .. ARGV[1]
local v = rcall("HMGET", KEYS[1], "limit", "spent", "held", "due", "pend", "proll")
-- "due": no hold expires before it (see includes/holds' sweepExpired).
due = tonumber(v[4])
if v[5] or v[6] or not due or now >= due then
  local L = library()
  local ended = L.periodDue(KEYS[1], now, v[5])
  if ended then
    return ended
  end
  local rolled = L.rollWindow(KEYS[1], now, v[6])
  local swept
  swept, due = L.sweepExpired(KEYS[1], KEYS[2], now, v[4])
  if swept or rolled then
    v = rcall("HMGET", KEYS[1], "limit", "spent", "held")
  end
end
-- max(0, limit - spent - held), as includes/holds' roomOf (inline: the common case needs no includes).
local room = (tonumber(v[1]) or 0) - (tonumber(v[2]) or 0) - (tonumber(v[3]) or 0)
if room < 0 then
  room = 0
end
local units = tonumber(amount)

-- The record is created only when there is room (NX: never over an existing one, whose value
-- GET returns instead), so a denied reserve, a retry and a conflict write nothing.
local stored
if units <= room then
  local record = "held|" .. amount .. "|" .. ARGV[6] .. "|" .. ARGV[5]
  stored = rcall("SET", KEYS[3], record, "NX", "GET", "PX", ARGV[4])
  if not stored and not ARGV[7] then
    -- A new hold (library()'s addHold, inline).
    local expiresAt = now + tonumber(ARGV[3])
    if rcall("ZADD", KEYS[2], "NX", string.format("%d", expiresAt), member) == 1 then
      rcall("HINCRBY", KEYS[1], "held", amount)
      if not due or expiresAt < due then
        rcall("HSET", KEYS[1], "due", string.format("%d", expiresAt))
      end
      return room - units
    end
    -- Its record was gone but the hold is counted: a retry (the SET above put the record back,
    -- without this call's token: another call created the hold).
    library().keepForGood(false)
    return {2, room}
  end
  local L = library()
  if stored and string.sub(stored, 1, 10) == "abandoned|" then
    if L.ownTombstone(stored) then
      return {4, room}
    end
    rcall("SET", KEYS[3], record, "PX", ARGV[4])
    stored = nil
  end
  if not stored and ARGV[7] then
    stored = rcall("HGET", KEYS[1], L.settled .. ARGV[1])
    if stored then
      -- Resolved before, and its record evicted since: put the record back, answer as a retry.
      rcall("SET", KEYS[3], stored, "PX", ARGV[7])
    end
  end
  if not stored then
    if L.addHold() then
      return room - units
    end
    -- Its record was gone but the hold is counted: a retry (as above).
    L.keepForGood(false)
    return {2, room}
  end
else
  stored = rcall("GET", KEYS[3])
  if stored and string.sub(stored, 1, 10) == "abandoned|" then
    if library().ownTombstone(stored) then
      return {4, room}
    end
    stored = nil
  end
  if not stored and ARGV[7] then
    stored = rcall("HGET", KEYS[1], library().settled .. ARGV[1])
    if not stored and rcall("ZSCORE", KEYS[2], member) then
      return {2, room} -- its record evicted, the hold still counted: a retry
    end
  end
  if not stored then
    return {0, room}
  end
end

-- The holdId has a record already: a retry (same account and amount) or a conflict.
local L = library()
local hold = L.splitHold(stored)
if hold[4] ~= ARGV[5] then
  return {-1, hold[2], hold[4]}
end
if hold[2] ~= amount then
  return {-1, hold[2]}
end
if hold[1] == "held" then
  local expiresAt = rcall("ZSCORE", KEYS[2], member)
  if not expiresAt or tonumber(expiresAt) <= now then
    -- A retry after the hold expired (released, or due for release): hold it again if there is room.
    if expiresAt and L.releaseHold(KEYS[1], KEYS[2], ARGV[1], amount) then
      room = L.roomOf(rcall("HMGET", KEYS[1], "limit", "spent", "held"))
    end
    if units > room then
      return {0, room}
    end
    L.addHold()
    if hold[3] == ARGV[6] then
      rcall("PEXPIRE", KEYS[3], ARGV[4])
    else
      L.keepForGood(true) -- granted to another call before: never taken back
    end
    return room - units
  end
  if hold[3] ~= "" and hold[3] ~= ARGV[6] then
    L.keepForGood(false) -- a replay of another call's hold: this caller may be told "granted"
  end
  return {2, room}
end
return {3, room}
