--[[ A job that keeps its result succeeded: record its outcome and ack it, in one step, so an
ack never lands without the result (a refused write refuses both).

KEYS[1]  {prefix:queue}:job:<id>   (hash)    the job's record
KEYS[2]  {prefix:queue}:done:<id>  (list)    its outcome, which waiters block on
KEYS[3]  {prefix:queue}:stream     (stream)  its entry
KEYS[4]  {prefix:queue}:stats      (hash)    "succeeded" grows
ARGV[1]  consumer group
ARGV[2]  entry id
ARGV[3]  time to live of the record and outcome, ms
ARGV[4]  outcome JSON
ARGV[5..] field, value, ... of the record

Returns: 1 acked | 0 the entry was no longer pending (the outcome is recorded all the same:
the job did succeed).
]]
local rcall = redis.call
local job, done, stream, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, entry_id, ttl, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if #ARGV > 4 then
  rcall('HSET', job, unpack(ARGV, 5))
end
rcall('PEXPIRE', job, ttl)
rcall('DEL', done)
rcall('RPUSH', done, outcome)
rcall('PEXPIRE', done, ttl)
local acked = rcall('XACK', stream, group, entry_id)
rcall('XDEL', stream, entry_id)
if acked > 0 then
  rcall('HINCRBY', stats, 'succeeded', acked)
end
return acked
