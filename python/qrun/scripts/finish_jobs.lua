--[[ Jobs that keep their results succeeded: store each one's outcome and ack them all, in one
step, so an ack never lands without its result (a refused write refuses them all). One call
carries every tracked job a worker finished since its last round trip.

KEYS[1]  {prefix:queue}:stream     (stream)  the jobs' entries
KEYS[2]  {prefix:queue}:stats      (hash)    "succeeded" grows by the number acked
KEYS[3..] {prefix:queue}:job:<id> (hash) and {prefix:queue}:done:<id> (list), a pair per job
ARGV[1]  consumer group
ARGV[2]  time to live of the outcomes (and of any record the jobs have), ms
ARGV[3..] two values per job, in KEYS order: entry id, outcome JSON (which carries the job's
         task, attempt, start and end times and worker, so no record is written for it)

Returns: the number of entries acked (an entry no longer pending is not; its outcome is
stored all the same: the job did succeed).
]]
local rcall = redis.call
local stream, stats, group, ttl = KEYS[1], KEYS[2], ARGV[1], ARGV[2]

local entries = {}
for i = 0, (#KEYS - 2) / 2 - 1 do
  local done = KEYS[4 + 2 * i]
  rcall('DEL', done)
  rcall('RPUSH', done, ARGV[4 + 2 * i])
  rcall('PEXPIRE', done, ttl)
  rcall('PEXPIRE', KEYS[3 + 2 * i], ttl)  -- a running record written for a slow job ends with it
  entries[#entries + 1] = ARGV[3 + 2 * i]
end
local acked = rcall('XACK', stream, group, unpack(entries))
rcall('XDEL', stream, unpack(entries))
if acked > 0 then
  rcall('HINCRBY', stats, 'succeeded', acked)
end
return acked
