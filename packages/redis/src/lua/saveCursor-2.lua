--[[
  Saves a change-log consumer's cursor, forward only: an older cursor is ignored.

  Input:
    KEYS[1] cursors: consumer cursors (hash: name -> seq)
    KEYS[2] seq: change-log sequence (string counter)

    ARGV[1] consumer: the consumer's name
    ARGV[2] cursor: a decimal integer string

  Output:
     {1}  saved
     {0}  ignored: not past the saved cursor
    {-6}  the cursor is past the end of the change log
]]
local rcall = redis.call

if tonumber(ARGV[2]) > (tonumber(rcall("GET", KEYS[2])) or 0) then
  return {-6}
end
local saved = tonumber(rcall("HGET", KEYS[1], ARGV[1]))
if saved and saved >= tonumber(ARGV[2]) then
  return {0}
end
rcall("HSET", KEYS[1], ARGV[1], ARGV[2])
return {1}
