--[[ Delete a key only if it still holds the caller's value: release a lock by its token, or
free a unique job's claim by its job id, never someone else's.

KEYS[1]  {prefix:queue}:lock:<name> or {prefix:queue}:unique:<digest>  (string)  holder's value
ARGV[1]  the value the caller holds it with (lock token, or job id)

Returns: 1 deleted | 0 the key is gone (expired) or held by someone else: nothing deleted.
]]
local rcall = redis.call
local key = KEYS[1]
local holder = ARGV[1]

if rcall('GET', key) == holder then
  return rcall('DEL', key)
end
return 0
