--[[
  Budget periods of an account (see @latch/core's contracts/quota-period). Needs includes/clock.
  Account hash fields: "pevery" and "pzone" (a calendar period: day, week or month of an IANA
  zone), "pstart" and "pend" (its current bounds, ms); "proll" (a rolling window, ms) with its
  buckets as a FIFO queue in the same hash, so no key outside the account's slot is needed:
  fields "u:<seq>" = "<ms>|<amount>" from "uh" (the oldest) to "ut" (the next free seq), and
  "usum" (the sum of the queue's amounts, = spent after every script of this release).

  Buckets (core's quotaRollingBucketMs / quotaRollingEntryAt): ceil(proll / 100) ms wide,
  aligned on the epoch; a commit is added to the entry of its bucket, whose <ms> is the
  bucket's last millisecond, so the queue holds at most 101 live entries whatever the traffic,
  and an entry leaves the window when <ms> <= now - proll (its whole bucket has). Entries
  written per commit by the build before buckets ("<commit ms>|<amount>") follow the same rule
  and are read and dropped like buckets: nothing is converted.

  A commit by a release from before budget periods (its scripts add to "spent" and know no
  queue) shows as spent > usum: rollWindow records the difference in now's bucket, so it
  leaves the window one window after the script that saw it, never stays counted forever.
  A commit by the build before buckets (running beside this one during a rolling deploy)
  appends its own entry but leaves usum alone, so "useq" (the queue's tail when usum was last
  brought up to date) tells its entries apart: rollWindow adds the entries from useq to the
  tail to usum first (up to 1000 per call), and compensates only once it has counted them all,
  so such a commit is never recorded twice (a double entry would later drop real spend).

  Calendar bounds need time-zone data, which Lua has not: a script that finds the period
  ended (now >= pend) writes nothing and answers {-9, now, every, zone}; the client computes
  the period containing that server time (Intl) and runs rollPeriod-1.lua, which checks the
  bounds contain the server's now and resets spent to 0, then calls the script again. So the
  period rolls by the server's clock, and open holds (in "held") are never touched.
]]

-- The {-9, …} reply when the account's calendar period has ended at `now`, else nil.
-- `pend` is the field's stored value (or nil).
local function periodDue(accountKey, now, pend)
  if pend and now >= tonumber(pend) then
    local c = rcall("HMGET", accountKey, "pevery", "pzone")
    return {-9, integerString(now), c[1] or "", c[2] or ""}
  end
  return nil
end

-- The <ms> of the entry that a commit at `now` is added to in a rolling window of `proll` ms:
-- the last millisecond of its bucket (core's quotaRollingEntryAt).
local function bucketEntryAt(proll, now)
  local width = math.ceil(tonumber(proll) / 100)
  return now - (now % width) + width - 1
end

-- Adds `amount` (integer string > 0) to the queue's entry for `now`'s bucket (the last entry,
-- or a new one). Leaves "usum" alone.
local function appendEntry(accountKey, now, amount, proll)
  local at = integerString(bucketEntryAt(proll, now))
  local q = rcall("HMGET", accountKey, "uh", "ut", "useq")
  local head = tonumber(q[1]) or 0
  local tail = tonumber(q[2]) or 0
  if tail > head then
    local field = "u:" .. integerString(tail - 1)
    local last = rcall("HGET", accountKey, field)
    local lastAt, lastAmount = string.match(last or "", "^(%d+)|(%d+)$")
    if lastAt == at then
      rcall("HSET", accountKey, field, at .. "|" .. integerString(tonumber(lastAmount) + tonumber(amount)))
      return
    end
  end
  rcall("HSET", accountKey, "u:" .. integerString(tail), at .. "|" .. amount, "ut", integerString(tail + 1))
  -- usum counts this entry (the caller adds it); "useq" moves on only when it counted all before.
  if tonumber(q[3]) == tail then
    rcall("HSET", accountKey, "useq", integerString(tail + 1))
  end
end

-- Records a commit of `amount` (integer string > 0) at `now` in a rolling window of `proll` ms.
local function recordUsage(accountKey, now, amount, proll)
  appendEntry(accountKey, now, amount, proll)
  rcall("HINCRBY", accountKey, "usum", amount)
end

-- Deletes fields u:<from> .. u:<to - 1> (to - from <= 1000), in one HDEL per 500.
local function deleteEntries(accountKey, from, to)
  local fields = {}
  for seq = from, to - 1 do
    fields[#fields + 1] = "u:" .. integerString(seq)
    if #fields == 500 then
      rcall("HDEL", accountKey, unpack(fields))
      fields = {}
    end
  end
  if #fields > 0 then
    rcall("HDEL", accountKey, unpack(fields))
  end
end

-- Deletes up to 1000 fields of a queue that a period change left ("ugh" to "uh"; see
-- dropUsage). Returns nothing.
local function sweepDropped(accountKey, ugh, head)
  local from = tonumber(ugh)
  local to = math.min(head, from + 1000)
  deleteEntries(accountKey, from, to)
  if to < head then
    rcall("HSET", accountKey, "ugh", integerString(to))
  else
    rcall("HDEL", accountKey, "ugh")
  end
end

-- Drops the entries a rolling window of `proll` ms has passed (up to 1000 per call; the rest
-- on the next) from spent, then records in now's bucket any spend that an older release
-- committed without an entry (spent > usum; see above). Returns whether spent changed.
local function rollWindow(accountKey, now, proll)
  if not proll then
    return false
  end
  local cutoff = now - tonumber(proll)
  local q = rcall("HMGET", accountKey, "uh", "ut", "spent", "usum", "useq", "ugh")
  local head = tonumber(q[1]) or 0
  local tail = tonumber(q[2]) or 0
  if q[6] then
    sweepDropped(accountKey, q[6], head)
  end
  local spent = tonumber(q[3]) or 0
  local usum = tonumber(q[4])
  local counted = tonumber(q[5])
  if not usum then
    -- A queue from before "usum" existed matched spent.
    usum = spent
    counted = tail
  elseif not counted then
    counted = tail
  elseif counted > tail then
    -- The queue was rebuilt by a build that knows no usum (its setLimit): count it again.
    usum = 0
    counted = head
  end
  if counted < head then
    counted = head
  end
  -- Entries appended by the build before buckets (usum left alone): count them in usum.
  local first = counted
  while counted < tail and counted - first < 1000 do
    local entry = rcall("HGET", accountKey, "u:" .. integerString(counted))
    if entry then
      local amount = string.match(entry, "^%d+|(%d+)$")
      usum = usum + (tonumber(amount) or 0)
    end
    counted = counted + 1
  end
  local start = head
  local dropped = 0
  while head < tail and head - start < 1000 do
    local field = "u:" .. integerString(head)
    local entry = rcall("HGET", accountKey, field)
    if entry then
      local at, amount = string.match(entry, "^(%d+)|(%d+)$")
      if tonumber(at) > cutoff then
        break
      end
      dropped = dropped + tonumber(amount)
      rcall("HDEL", accountKey, field)
    end
    head = head + 1
  end
  if head ~= start then
    rcall("HSET", accountKey, "uh", integerString(head))
  end
  local left = spent - dropped
  if left < 0 then
    left = 0
  end
  if dropped > 0 then
    rcall("HSET", accountKey, "spent", integerString(left))
  end
  usum = usum - dropped
  if q[5] ~= integerString(counted) then
    rcall("HSET", accountKey, "useq", integerString(counted))
  end
  if counted < tail then
    -- Not all counted yet (the next call goes on): no compensation before it is.
    rcall("HSET", accountKey, "usum", integerString(usum))
    return dropped > 0
  end
  if left > usum then
    appendEntry(accountKey, now, integerString(left - usum), proll)
  end
  if q[4] ~= integerString(left) then
    rcall("HSET", accountKey, "usum", integerString(left))
  end
  return dropped > 0
end

-- Deletes a rolling window's queue (the period changed). A queue of more than 1000 entries
-- (only the per-commit build before buckets wrote that many: a million commits in a window
-- are a million entries) is not deleted in one script, which would block the server for
-- seconds: its first 1000 entries are, the rest stay as "ugh" (the first left) up to "uh",
-- and the new queue starts after them (uh = ut = the old tail); every later roll of the
-- window, and the next period change, deletes 1000 more.
local function dropUsage(accountKey)
  local q = rcall("HMGET", accountKey, "uh", "ut", "ugh")
  local head = tonumber(q[1]) or 0
  local tail = tonumber(q[2]) or 0
  local from = tonumber(q[3]) or head
  local to = math.min(tail, from + 1000)
  deleteEntries(accountKey, from, to)
  rcall("HDEL", accountKey, "usum", "useq")
  if to < tail then
    rcall("HSET", accountKey, "ugh", integerString(to), "uh", integerString(tail), "ut", integerString(tail))
  else
    rcall("HDEL", accountKey, "uh", "ut", "ugh")
  end
end

-- Whether `value` is an integer string of at most 16 digits (>= 0).
local function isMs(value)
  return value ~= nil and string.len(value) <= 16 and string.match(value, "^%d+$") ~= nil
end

-- The {-10, field} reply for calendar bounds a client passed that are not a period (negative,
-- not integers, end <= start, or longer than 33 days: the longest calendar period is a month
-- of 31 days plus an offset change), else nil.
local function badBounds(start, finish)
  if not isMs(start) then
    return {-10, "period.start"}
  end
  if not isMs(finish) then
    return {-10, "period.end"}
  end
  local length = tonumber(finish) - tonumber(start)
  if length <= 0 or length > 33 * 86400000 then
    return {-10, "period.end"}
  end
  return nil
end
