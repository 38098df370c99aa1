--[[
  Reserves quota: checks the limit and creates a hold atomically, retry-safe by holdId. Used on
  a Redis Cluster, where the holdId locator lives in another slot: the client sends its
  `SET … NX GET` beside this script (see reserveLocated-5.lua for a standalone server).

  Input:
    KEYS[1] account hash (limit, spent, held)
    KEYS[2] active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] hold record (string "<state>|<amount>|<actual>")

    ARGV[1] holdId
    ARGV[2] amount, integer string > 0
    ARGV[3] ttlMs, integer string > 0
    ARGV[4] hold record TTL in ms while held (ttlMs + retention), integer string

  Output:
     {1, remaining}  granted: a new hold
     {2, remaining}  granted before: a retry (same answer, held once)
     {0, remaining}  insufficient: nothing is held
    {-1, stored}     idempotency conflict: the holdId was reserved with another amount
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"
--- @include "includes/reserve"

return reserveHold(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
