--[[ Reset a held lock's expiry, only if the caller still holds it.

KEYS[1]  {prefix:queue}:lock:<name>  (string)  the lock; value: the holder's token
ARGV[1]  the caller's token (hex text)
ARGV[2]  new time to live, in milliseconds from now

Returns: 1 extended | 0 the caller no longer held it (it expired, maybe taken since): nothing changed.
]]
local rcall = redis.call
local lock = KEYS[1]
local token = ARGV[1]

if rcall('GET', lock) == token then
  rcall('PEXPIRE', lock, ARGV[2])
  return 1
end
return 0
