--[[ Release a lock, only if the caller still holds it (someone else's lock is never deleted).

KEYS[1]  {prefix:queue}:lock:<name>  (string)  the lock; value: the holder's token
ARGV[1]  the caller's token (hex text)

Returns: 1 released | 0 the caller no longer held it (it expired, maybe taken since): nothing deleted.
]]
local rcall = redis.call
local lock = KEYS[1]
local token = ARGV[1]

if rcall('GET', lock) == token then
  return rcall('DEL', lock)
end
return 0
