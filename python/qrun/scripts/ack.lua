--[[ Acknowledge finished jobs and delete their entries.

KEYS[1]  {prefix:queue}:stream  (stream)  the jobs' entries
KEYS[2]  {prefix:queue}:stats   (hash)    "succeeded" grows by the number acked
ARGV[1]  consumer group
ARGV[2..] entry ids

Returns: the number of entries that were pending and are now acked.
]]
local rcall = redis.call
local stream = KEYS[1]
local stats = KEYS[2]
local group = ARGV[1]

local acked = rcall('XACK', stream, group, unpack(ARGV, 2))
rcall('XDEL', stream, unpack(ARGV, 2))
if acked > 0 then
  rcall('HINCRBY', stats, 'succeeded', acked)
end
return acked
