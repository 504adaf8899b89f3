--[[ Record what a job's stream entries cannot say: its state fields and, once it settled,
its outcome, which waiters block on (qrun.lifecycle).

KEYS[1]  {prefix:queue}:job:<id>   (hash)  state, times, worker, progress
KEYS[2]  {prefix:queue}:done:<id>  (list)  one element: the outcome JSON, once settled
ARGV[1]  time to live of both keys, ms
ARGV[2]  outcome JSON ('' while the job has not settled: the list is left alone)
ARGV[3..] field, value, ... of the hash (none: only the outcome)

Returns: 1.
]]
local rcall = redis.call
local job = KEYS[1]
local done = KEYS[2]
local ttl = ARGV[1]

if #ARGV > 2 then
  rcall('HSET', job, unpack(ARGV, 3))
  rcall('PEXPIRE', job, ttl)
end
if ARGV[2] ~= '' then
  rcall('DEL', done)
  rcall('RPUSH', done, ARGV[2])
  rcall('PEXPIRE', done, ttl)
  if rcall('EXISTS', job) == 1 then
    rcall('PEXPIRE', job, ttl)
  end
end
return 1
