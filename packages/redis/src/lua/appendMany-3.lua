--[[
  Appends a batch of observations, all or nothing, idempotent by eventId.

  Input:
    KEYS[1] observations: observations (hash: eventId -> observation JSON)
    KEYS[2] hashes: payload hashes (hash: eventId -> canonical hash)
    KEYS[3] unpriced: eventIds not priced yet (sorted set, all scores 0, read in lexicographic order)

    ARGV[3i-2] eventId: the eventId of item i
    ARGV[3i-1] hash: canonical hash of item i
    ARGV[3i]   observation: the observation JSON of item i

  Output:
    {r1, r2, ...}          per item: 1 appended, 0 already_exists (same payload)
    {-1, i, storedHash}    idempotency conflict at item i (with the store or an earlier item
                           of the batch): nothing is written
]]
local rcall = redis.call

local count = #ARGV / 3
local seen = {}
local results = {}
for i = 1, count do
  local eventId = ARGV[3 * i - 2]
  local hash = ARGV[3 * i - 1]
  local known = seen[eventId] or rcall("HGET", KEYS[2], eventId)
  if known then
    if known ~= hash then
      return {-1, i, known}
    end
    results[i] = 0
  else
    seen[eventId] = hash
    results[i] = 1
  end
end

for i = 1, count do
  if results[i] == 1 then
    local eventId = ARGV[3 * i - 2]
    rcall("HSET", KEYS[1], eventId, ARGV[3 * i])
    rcall("HSET", KEYS[2], eventId, ARGV[3 * i - 1])
    rcall("ZADD", KEYS[3], 0, eventId)
  end
end
return results
