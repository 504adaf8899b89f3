--[[ Move a job that will not be retried to the dead-letter stream, with the reason, atomically.

KEYS[1]  {prefix:queue}:stream  (stream)  the job's entry
KEYS[2]  {prefix:queue}:dead    (stream)  dead-lettered jobs
KEYS[3]  {prefix:queue}:stats   (hash)    "dead_lettered" grows by one
ARGV[1]  consumer group
ARGV[2]  entry id
ARGV[3..] field, value, ... of the dead entry (the job's fields plus dead_* fields)

Returns: 1 dead-lettered | 0 the entry was no longer pending (someone else settled it).
]]
local rcall = redis.call
local stream = KEYS[1]
local dead = KEYS[2]
local stats = KEYS[3]

if rcall('XACK', stream, ARGV[1], ARGV[2]) == 0 then
  return 0
end
rcall('XADD', dead, '*', unpack(ARGV, 3))
rcall('XDEL', stream, ARGV[2])
rcall('HINCRBY', stats, 'dead_lettered', 1)
return 1
