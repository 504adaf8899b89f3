--[[ Hand back fetched jobs a worker will not start: each becomes a fresh entry at the end of
the stream, atomically, with its fields (and attempt) unchanged.

KEYS[1]  {prefix:queue}:stream  (stream)  the jobs' entries
ARGV[1]  consumer group
ARGV[2..] entry ids

Returns: the number of entries handed back (ids no longer pending are skipped; an entry
deleted while pending is only cleared from the pending list).
]]
local rcall = redis.call
local stream = KEYS[1]
local group = ARGV[1]

local released = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local entries = rcall('XRANGE', stream, id, id)
  if #entries == 0 then
    rcall('XACK', stream, group, id)  -- deleted while pending: nothing to hand back, clear the PEL
  elseif #entries[1][2] > 7000 then
    -- too many fields for one XADD (Lua's unpack limit): left pending; the claimer dead-letters it
  elseif rcall('XACK', stream, group, id) == 1 then
    rcall('XADD', stream, '*', unpack(entries[1][2]))
    rcall('XDEL', stream, id)
    released = released + 1
  end
end
return released
