--[[
  Adds to a usage counter once per operation id (an event id), and returns the total before
  the add, atomically. The operation is recorded with its answer in the same script, so a
  replay (a retry, a re-rating, a second worker) changes nothing and gets the first answer.

  Input:
    KEYS[1] counter: the counter's hash (period -> total)
    KEYS[2] ops: the operations hash of this counter key and period (opId -> "<quantity>|<previous>");
            it expires retention ms after the period's last add

    ARGV[1] period
    ARGV[2] quantity: the quantity to add, integer string >= 0
    ARGV[3] opId
    ARGV[4] retentionMs: retention of the operations hash in ms, > 0

  Output:
     {1, previous}          added; previous is the stored integer string ("0" when new)
     {2, previous}          a replay: the first add's answer; nothing changes
    {-1, previous, stored}  idempotency_conflict: the opId was added with another quantity; nothing changes
    {-4, previous}          overflow: the total would pass 2^53-1; nothing changes
]]
local rcall = redis.call

local op = rcall("HGET", KEYS[2], ARGV[3])
if op then
  local bar = string.find(op, "|", 1, true)
  local stored = string.sub(op, 1, bar - 1)
  local first = string.sub(op, bar + 1)
  if stored == ARGV[2] then
    return {2, first}
  end
  return {-1, first, stored}
end
local previous = rcall("HGET", KEYS[1], ARGV[1]) or "0"
if tonumber(previous) + tonumber(ARGV[2]) > 9007199254740991 then
  return {-4, previous}
end
rcall("HINCRBY", KEYS[1], ARGV[1], ARGV[2])
rcall("HSET", KEYS[2], ARGV[3], ARGV[2] .. "|" .. previous)
rcall("PEXPIRE", KEYS[2], ARGV[4])
return {1, previous}
