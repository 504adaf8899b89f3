--[[ Create or update a queue's settings record, bumping its version, atomically.

KEYS[1]  {prefix:queue}:settings  (hash)  the settings an operator set, as text, and "version"
ARGV[1]  'create' (fails if a record exists) or 'update' (fails if none exists)
ARGV[2..] field, value, ... (already checked by the caller)

Returns: the new version | -1 create, but a record exists | -2 update, but none exists.
]]
local rcall = redis.call
local settings = KEYS[1]
local exists = rcall('EXISTS', settings) == 1

if ARGV[1] == 'create' and exists then
  return -1
end
if ARGV[1] == 'update' and not exists then
  return -2
end
if #ARGV > 1 then
  rcall('HSET', settings, unpack(ARGV, 2))
end
return rcall('HINCRBY', settings, 'version', 1)
