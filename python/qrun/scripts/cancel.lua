--[[ Cancel one job where the caller found it, atomically: a job no worker holds is removed
(it never runs); a job a worker holds is marked, and the worker's supervisor tells it.

KEYS[1]  {prefix:queue}:stream          (stream)  ready and in-flight jobs
KEYS[2]  {prefix:queue}:delayed         (zset)    delayed jobs and retries
KEYS[3]  {prefix:queue}:stats           (hash)    "cancelled" grows
KEYS[4]  {prefix:queue}:cancelled       (zset)    job id -> ms: cancels pending
KEYS[5]  {prefix:queue}:cancel_entries  (zset)    entry id -> ms: what supervisors look for
KEYS[6]  {prefix:queue}:job:<id>        (hash)    the job's record
KEYS[7]  {prefix:queue}:done:<id>       (list)    its outcome
ARGV[1]  consumer group
ARGV[2]  job id
ARGV[3]  where it was found: 'entry' (the stream) or 'delayed'
ARGV[4]  its entry id, or its delayed member
ARGV[5]  now, ms since the epoch
ARGV[6]  time to live of the record and outcome, ms
ARGV[7]  outcome JSON of a cancelled job

Returns: 'cancelled' (removed: it will never run) | 'cancelling' (a worker holds it: marked)
         | 'moved' (it is no longer where the caller found it: look again).
]]
local rcall = redis.call
local stream, delayed, stats, cancelled, cancel_entries, job, done =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local group, job_id, where, found, now, ttl, outcome =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local function settle()
  rcall('HSET', job, 'state', 'cancelled', 'finished_at_ms', now)
  rcall('PEXPIRE', job, ttl)
  rcall('DEL', done)
  rcall('RPUSH', done, outcome)
  rcall('PEXPIRE', done, ttl)
  rcall('HINCRBY', stats, 'cancelled', 1)
  return 'cancelled'
end

if where == 'delayed' then
  if rcall('ZREM', delayed, found) == 0 then
    return 'moved'
  end
  return settle()
end

local entries = rcall('XRANGE', stream, found, found)
if #entries == 0 then
  return 'moved'
end
local fields = entries[1][2]
local same = false
for i = 1, #fields, 2 do
  if fields[i] == 'id' and fields[i + 1] == job_id then
    same = true
  end
end
if not same then
  return 'moved'
end
local pending = redis.pcall('XPENDING', stream, group, found, found, 1)
if pending.err == nil and #pending > 0 then  -- (no group yet: no worker ever read it)
  rcall('ZADD', cancelled, now, job_id)
  rcall('ZADD', cancel_entries, now, found)
  rcall('HSET', job, 'cancel_requested_at_ms', now)
  rcall('PEXPIRE', job, ttl)
  return 'cancelling'
end
rcall('XDEL', stream, found)
return settle()
