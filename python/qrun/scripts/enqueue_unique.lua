--[[ Add one job to the stream unless a job with the same unique key is already waiting or running.

KEYS[1]  {prefix:queue}:stream            (stream)  ready jobs
KEYS[2]  {prefix:queue}:stats             (hash)    "enqueued" grows by one when the job is added
KEYS[3]  {prefix:queue}:unique:<digest>   (string)  id of the job holding the key; expires after unique_for
ARGV[1]  how long the unique key lives, in milliseconds
ARGV[2..7] the job's six field values, in field order: id, task, args, kwargs, attempt, enqueued_at

Returns: the id of the job holding the key: ARGV[2] when this job was added, else the id of
the existing job (and nothing was added).
]]
local rcall = redis.call
local stream = KEYS[1]
local stats = KEYS[2]
local unique = KEYS[3]
local job_id = ARGV[2]

if not rcall('SET', unique, job_id, 'NX', 'PX', ARGV[1]) then
  return rcall('GET', unique)
end
rcall('XADD', stream, '*',
  'id', ARGV[2], 'task', ARGV[3], 'args', ARGV[4], 'kwargs', ARGV[5],
  'attempt', ARGV[6], 'enqueued_at', ARGV[7])
rcall('HINCRBY', stats, 'enqueued', 1)
return job_id
