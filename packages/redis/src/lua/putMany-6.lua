--[[
  Stores a batch of rated-record versions, all or nothing, idempotent by ratedRecordId, and
  appends each new version to the change log with the next sequence number. Scripts run one
  at a time, so a version is visible exactly when its seq is: the log never has a gap that a
  later writer could fill behind a reader's cursor. A correction must be in the currency of
  the version it supersedes (stored, or earlier in the batch): one event, one currency.

  Input:
    KEYS[1] records: records (hash: ratedRecordId -> record JSON)
    KEYS[2] hashes: record hashes (hash: ratedRecordId -> canonical hash without ratedAt)
    KEYS[3] current: current versions (hash: eventId -> highest stored version)
    KEYS[4] log: change log (sorted set: ratedRecordId scored by seq)
    KEYS[5] seq: change-log sequence (string counter)
    KEYS[6] tenants: events by tenant (sorted set, scores 0: "<tenantId>\0<eventId>")

    ARGV[8i-7] ratedRecordId: the ratedRecordId of item i
    ARGV[8i-6] hash: canonical hash of item i
    ARGV[8i-5] record: the record JSON of item i
    ARGV[8i-4] eventId: the eventId of item i
    ARGV[8i-3] version: the version of item i, integer string
    ARGV[8i-2] supersedes: the ratedRecordId it supersedes, or "" for version 1
    ARGV[8i-1] tenantMember: tenant index member of item i
    ARGV[8i]   currency: the currency of item i

  Output:
    {r1, r2, ...}               per item: 1 stored, 0 already_exists (same record)
    {-1, i, storedHash}         idempotency conflict at item i: nothing is written
    {-5, i}                     item i supersedes a version that is not stored: nothing is written
    {-8, i, supersededCurrency} item i is in another currency than the version it supersedes:
                                nothing is written
]]
local rcall = redis.call

local count = #ARGV / 8
local seen = {}
local seenCurrency = {}
local results = {}
for i = 1, count do
  local base = 8 * (i - 1)
  local id = ARGV[base + 1]
  local hash = ARGV[base + 2]
  local known = seen[id] or rcall("HGET", KEYS[2], id)
  if known then
    if known ~= hash then
      return {-1, i, known}
    end
    results[i] = 0
  else
    local supersedes = ARGV[base + 6]
    local currency = ARGV[base + 8]
    if supersedes ~= "" then
      -- Only corrections read the version they supersede; a batch of first versions reads nothing.
      local previous = seenCurrency[supersedes]
      if previous == nil then
        local json = rcall("HGET", KEYS[1], supersedes)
        if not json then
          return {-5, i}
        end
        previous = cjson.decode(json).currency
      end
      if previous ~= currency then
        return {-8, i, tostring(previous)}
      end
    end
    seen[id] = hash
    seenCurrency[id] = currency
    results[i] = 1
  end
end

for i = 1, count do
  if results[i] == 1 then
    local base = 8 * (i - 1)
    local id = ARGV[base + 1]
    local eventId = ARGV[base + 4]
    rcall("HSET", KEYS[1], id, ARGV[base + 3])
    rcall("HSET", KEYS[2], id, ARGV[base + 2])
    local seq = rcall("INCR", KEYS[5])
    rcall("ZADD", KEYS[4], string.format("%d", seq), id)
    local current = tonumber(rcall("HGET", KEYS[3], eventId)) or 0
    if tonumber(ARGV[base + 5]) > current then
      rcall("HSET", KEYS[3], eventId, ARGV[base + 5])
    end
    rcall("ZADD", KEYS[6], 0, ARGV[base + 7])
  end
end
return results
