--[[ Free a unique job's key once the job reached a terminal state (succeeded or dead-lettered).

KEYS[1]  {prefix:queue}:unique:<digest>  (string)  id of the job holding the key
ARGV[1]  the finished job's id

Returns: 1 released | 0 the key is gone (expired) or held by another job: nothing deleted.
]]
local rcall = redis.call
local unique = KEYS[1]
local job_id = ARGV[1]

if rcall('GET', unique) == job_id then
  return rcall('DEL', unique)
end
return 0
