--[[ A worker stopped a cancelled job (before it started, or by interrupting it): take its
entry out of the pending list, clear its cancel marks and record the outcome, atomically.

KEYS[1]  {prefix:queue}:stream          (stream)  the job's entry
KEYS[2]  {prefix:queue}:stats           (hash)    "cancelled" grows
KEYS[3]  {prefix:queue}:cancelled       (zset)    job id -> ms
KEYS[4]  {prefix:queue}:cancel_entries  (zset)    entry id -> ms
KEYS[5]  {prefix:queue}:job:<id>        (hash)    the job's record
KEYS[6]  {prefix:queue}:done:<id>       (list)    its outcome
ARGV[1]  consumer group
ARGV[2]  entry id
ARGV[3]  job id
ARGV[4]  now, ms since the epoch
ARGV[5]  time to live of the record and outcome, ms
ARGV[6]  outcome JSON

Returns: 1 settled | 0 the entry was no longer pending (someone else settled it).
]]
local rcall = redis.call
local stream, stats, cancelled, cancel_entries, job, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, entry_id, job_id, now, ttl, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

rcall('ZREM', cancelled, job_id)
rcall('ZREM', cancel_entries, entry_id)
if rcall('XACK', stream, group, entry_id) == 0 then
  return 0
end
rcall('XDEL', stream, entry_id)
rcall('HINCRBY', stats, 'cancelled', 1)
rcall('HSET', job, 'state', 'cancelled', 'finished_at_ms', now)
rcall('PEXPIRE', job, ttl)
rcall('DEL', done)
rcall('RPUSH', done, outcome)
rcall('PEXPIRE', done, ttl)
return 1
