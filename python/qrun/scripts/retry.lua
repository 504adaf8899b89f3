--[[ Reschedule a failed job: ack its entry and put its next attempt in the delayed set, atomically.

KEYS[1]  {prefix:queue}:stream   (stream)  the failed job's entry
KEYS[2]  {prefix:queue}:delayed  (zset)    where the next attempt waits
KEYS[3]  {prefix:queue}:stats    (hash)    "retried" grows by one
KEYS[4]  {prefix:queue}:cancelled (zset)   job ids whose cancel is pending
ARGV[1]  consumer group
ARGV[2]  entry id of the failed attempt
ARGV[3]  due time of the next attempt, ms since the epoch
ARGV[4]  delayed member for the next attempt (JSON array of the six field values)
ARGV[5]  job id

Returns: 1 rescheduled | 0 the entry was no longer pending (someone else settled it)
         | 2 the job was cancelled: nothing done (the caller settles it as cancelled).
]]
local rcall = redis.call
local stream = KEYS[1]
local delayed = KEYS[2]
local stats = KEYS[3]

if rcall('ZSCORE', KEYS[4], ARGV[5]) then
  return 2
end

if rcall('XACK', stream, ARGV[1], ARGV[2]) == 0 then
  return 0
end
rcall('XDEL', stream, ARGV[2])
rcall('ZADD', delayed, ARGV[3], ARGV[4])
rcall('HINCRBY', stats, 'retried', 1)
return 1
