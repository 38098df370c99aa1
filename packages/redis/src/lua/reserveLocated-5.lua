--[[
  Reserves quota and records the holdId's locator in the same script: a reserve on a
  standalone server (no hash slots) is one command. On a Cluster the locator lives in the
  holdId's slot, so reserve-3.lua and a separate `SET … NX GET` are used there instead.

  The locator (KEYS[4]) names the account that holds the holdId. When it names another
  account, that account's record of the holdId decides: present, the request is an
  idempotency conflict; gone (its hold was denied or is past retention), this account takes
  the locator over. The script cannot build that key itself (keys are never built in Lua),
  so it answers {-7, owner} and the client calls again with the owner's record as KEYS[5].

  Input:
    KEYS[1] account hash (limit, spent, held)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] hold record on this account (string "<state>|<amount>|<actual>")
    KEYS[4] holdId locator (string: the account holding the holdId, with a TTL)
    KEYS[5] the holdId's hold record on account ARGV[6] (KEYS[3] again when ARGV[6] is "")

    ARGV[1] holdId
    ARGV[2] amount, integer string > 0
    ARGV[3] ttlMs, integer string > 0
    ARGV[4] hold record TTL in ms while held (ttlMs + retention), integer string; also the
            locator's TTL when this script writes it
    ARGV[5] account (the value of the locator)
    ARGV[6] the other account the caller read from an earlier {-7, owner} reply, or ""

  Output:
     {1, remaining}       granted: a new hold; the locator names this account
     {2, remaining}       granted before: a retry (same answer, held once); locator refreshed
     {0, remaining}       insufficient: nothing is held, nothing written
    {-1, stored}          idempotency conflict: reserved on this account with another amount
    {-1, stored, owner}   idempotency conflict: account `owner` holds this holdId (amount
                          `stored`); nothing is written
    {-7, owner}           the locator names another account `owner` (not ARGV[6]): nothing
                          is written; call again with ARGV[6] = owner and its record as KEYS[5]
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"
--- @include "includes/reserve"

local owner = rcall("GET", KEYS[4])
if owner and owner ~= ARGV[5] then
  if owner ~= ARGV[6] then
    return {-7, owner}
  end
  local other = rcall("GET", KEYS[5])
  if other then
    return {-1, splitHold(other)[2], owner}
  end
end

local reply = reserveHold(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if reply[1] > 0 then
  rcall("SET", KEYS[4], ARGV[5], "PX", ARGV[4])
end
return reply
