--[[
  Takes back a hold that one reserve call created when its caller was not told "granted": the
  call was answered "unavailable" (its deadline passed before the reply, or no reply came), or,
  on a Cluster, the locator revealed an idempotency conflict. The call is named by the token it
  sent to reserve-3.lua (ARGV[4]), which the record keeps only while no other call has answered
  that hold (a replay, a hold held again after expiry, a record put back: each clears it, since
  its caller may be told "granted"). So the hold is taken back only while its record is still
  exactly "held|<amount>|<token>|<account>" as that call created it; then it is released and
  its record becomes a tombstone "abandoned|<amount>|<token>|<account>" (same TTL).

  With no record yet (the call's reserve has not run, was denied, or is still on its way, e.g.
  sent again after a lost connection), it writes the tombstone (TTL ARGV[5]): reserve-3.lua
  then refuses that call's late send ({4, …}, nothing written), and treats the tombstone as no
  record for every other call. Commit and void answer a tombstone as an unknown hold.
  Unless the hold is still counted (its record lost, e.g. evicted: another call may have been
  granted it) or, with ARGV[6], a settled marker says it was resolved: then nothing is written.

  Input:
    KEYS[1] account: account hash (limit, spent, held, due; settled markers "settled:<holdId>")
    KEYS[2] expiry: active holds (sorted set: "<amount>|<holdId>" scored by expiresAt ms)
    KEYS[3] record: hold record (string "<state>|<amount>|<actual>|<account>")

    ARGV[1] holdId
    ARGV[2] amount: the amount the call asked for, integer string
    ARGV[3] account: the account of KEYS[1] and KEYS[2]
    ARGV[4] token: the reserve call's token (not "")
    ARGV[5] recordTtlMs: the tombstone's TTL in ms when there is no record (ttlMs + retention)
    ARGV[6] keepSettled?: "1" when settled markers are kept (see includes/holds)

  Output:
     {1}  taken back: released, the record is a tombstone
     {2}  no record: a tombstone refuses the call's reserve if it comes later
     {0}  nothing to take back (the record is not the call's own unanswered hold)
]]
local rcall = redis.call
--- @include "includes/clock"
--- @include "includes/holds"

if ARGV[4] == "" then
  return {0}
end
local tombstone = "abandoned|" .. ARGV[2] .. "|" .. ARGV[4] .. "|" .. ARGV[3]
local stored = rcall("GET", KEYS[3])
if stored then
  if stored ~= "held|" .. ARGV[2] .. "|" .. ARGV[4] .. "|" .. ARGV[3] then
    return {0}
  end
  releaseHold(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
  rcall("SET", KEYS[3], tombstone, "KEEPTTL")
  return {1}
end
if rcall("ZSCORE", KEYS[2], ARGV[2] .. "|" .. ARGV[1]) then
  return {0}
end
if ARGV[6] and rcall("HEXISTS", KEYS[1], SETTLED .. ARGV[1]) == 1 then
  return {0}
end
rcall("SET", KEYS[3], tombstone, "PX", ARGV[5])
return {2}
