--[[
  Takes back a hold that reserve-3 has just created on a Cluster for a request that turned
  out to be an idempotency conflict (its holdId already belongs to another account's hold):
  releases it and deletes its record, as if it had never been granted.

  Input:
    KEYS[1] account: account hash (limit, spent, held, due)
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] record: hold record (string "<state>|<amount>|<actual>|<account>")

    ARGV[1] holdId
    ARGV[2] amount: the hold's amount as reserve-3 created it, integer string
    ARGV[3] account: the account of KEYS[1] and KEYS[2]

  Output:
     {1}  taken back
     {0}  nothing to take back (the hold is not the unresolved one reserve-3 created)
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

if rcall("GET", KEYS[3]) ~= "held|" .. ARGV[2] .. "||" .. ARGV[3] then
  return {0}
end
releaseHold(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
rcall("DEL", KEYS[3])
return {1}
