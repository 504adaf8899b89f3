--[[ Move delayed jobs whose time has come onto the stream (atomic; safe from many processes).

KEYS[1]  {prefix:queue}:delayed  (zset)    member: JSON array of the six field values; score: due ms
KEYS[2]  {prefix:queue}:stream   (stream)  ready jobs
ARGV[1]  now, in milliseconds since the epoch
ARGV[2]  most jobs to move in this call

Returns: the number of jobs moved (equal to ARGV[2] means more may be due).
]]
local rcall = redis.call
local delayed = KEYS[1]
local stream = KEYS[2]
local now_ms = ARGV[1]
local limit = tonumber(ARGV[2])

local due = rcall('ZRANGEBYSCORE', delayed, '-inf', now_ms, 'LIMIT', 0, limit)
local function six_values(member)
  local ok, f = pcall(cjson.decode, member)
  if not ok or type(f) ~= 'table' or #f ~= 6 then
    return nil
  end
  for i = 1, 6 do
    local kind = type(f[i])
    if kind ~= 'string' and kind ~= 'number' then  -- null, booleans, tables: XADD would fail
      return nil
    end
  end
  return f
end

for _, member in ipairs(due) do
  local f = six_values(member)
  if f then
    rcall('XADD', stream, '*',
      'id', f[1], 'task', f[2], 'args', f[3], 'kwargs', f[4], 'attempt', f[5], 'enqueued_at', f[6])
  else
    -- Not ours to interpret: hand it to a worker as-is, which dead-letters it with the reason.
    rcall('XADD', stream, '*', 'delayed_member', member)
  end
  rcall('ZREM', delayed, member)
end
return #due
