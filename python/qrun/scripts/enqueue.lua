--[[ Add a batch of jobs to a queue's stream, one entry per job.

KEYS[1]  {prefix:queue}:stream  (stream)  ready jobs
KEYS[2]  {prefix:queue}:stats   (hash)    counters; "enqueued" grows by the batch size
ARGV     six values per job, in field order: id, task, args, kwargs, attempt, enqueued_at

Returns: the number of jobs added.
]]
local rcall = redis.call
local stream = KEYS[1]
local stats = KEYS[2]

local added = 0
for i = 1, #ARGV, 6 do
  rcall('XADD', stream, '*',
    'id', ARGV[i], 'task', ARGV[i + 1], 'args', ARGV[i + 2], 'kwargs', ARGV[i + 3],
    'attempt', ARGV[i + 4], 'enqueued_at', ARGV[i + 5])
  added = added + 1
end
rcall('HINCRBY', stats, 'enqueued', added)
return added
