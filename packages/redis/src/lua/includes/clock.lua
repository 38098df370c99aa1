--[[
  The Redis server's clock in epoch milliseconds (hold expiry never trusts a client clock),
  and an exact integer-to-string conversion: Lua's tostring() prints numbers with %.14g, which
  turns 2^50 into "1.1258999068426e+15". Amounts never pass through here: they stay strings.
]]
local function nowMs()
  local t = rcall("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function integerString(n)
  return string.format("%d", n)
end
