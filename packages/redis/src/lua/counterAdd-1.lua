--[[
  Adds to a usage counter and returns the total before the add, atomically.

  Input:
    KEYS[1] counter: the counter's hash (period -> total)

    ARGV[1] period
    ARGV[2] quantity: the quantity to add, integer string >= 0

  Output:
     {1, previous}  added; previous is the stored integer string ("0" when new)
    {-4, previous}  overflow: the total would pass 2^53-1; nothing changes
]]
local rcall = redis.call

local previous = rcall("HGET", KEYS[1], ARGV[1]) or "0"
if tonumber(previous) + tonumber(ARGV[2]) > 9007199254740991 then
  return {-4, previous}
end
rcall("HINCRBY", KEYS[1], ARGV[1], ARGV[2])
return {1, previous}
