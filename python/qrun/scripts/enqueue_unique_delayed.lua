--[[ Add one delayed job unless a job with the same unique key is already waiting or running.

KEYS[1]  {prefix:queue}:delayed           (zset)    member: JSON array of the six field values; score: due ms
KEYS[2]  {prefix:queue}:stats             (hash)    "enqueued" grows by one when the job is added
KEYS[3]  {prefix:queue}:unique:<digest>   (string)  id of the job holding the key; expires after its ttl
ARGV[1]  how long the unique key lives, in milliseconds (the delay plus unique_for)
ARGV[2]  the job's id
ARGV[3]  due time, in milliseconds since the epoch
ARGV[4]  delayed member (JSON array of the six field values)

Returns: the id of the job holding the key: ARGV[2] when this job was added, else the id of
the existing job (and nothing was added).
]]
local rcall = redis.call
local delayed = KEYS[1]
local stats = KEYS[2]
local unique = KEYS[3]
local job_id = ARGV[2]

if not rcall('SET', unique, job_id, 'NX', 'PX', ARGV[1]) then
  return rcall('GET', unique)
end
rcall('ZADD', delayed, ARGV[3], ARGV[4])
rcall('HINCRBY', stats, 'enqueued', 1)
return job_id
