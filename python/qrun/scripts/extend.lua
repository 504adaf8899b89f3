--[[ Keep every entry a live worker holds hidden from the claimer: reset their idle time.

A worker holds more than the job it runs: jobs it finished whose acks ride on its next read,
and jobs it fetched but has not started. All of them stay with it while it lives. XCLAIM to
the owner itself with JUSTID changes neither the owner nor the delivery count.

KEYS[1]  {prefix:queue}:stream  (stream)  the entries
ARGV[1]  consumer group
ARGV[2]  the live worker's consumer name
ARGV[3]  most entries to extend

Returns: the number of entries whose idle time was reset.
]]
local rcall = redis.call
local stream = KEYS[1]
local group = ARGV[1]
local consumer = ARGV[2]

local pending = rcall('XPENDING', stream, group, '-', '+', ARGV[3], consumer)
if #pending == 0 then
  return 0
end
local args = {stream, group, consumer, 0}
for _, info in ipairs(pending) do
  args[#args + 1] = info[1]
end
args[#args + 1] = 'JUSTID'
rcall('XCLAIM', unpack(args))
return #pending
