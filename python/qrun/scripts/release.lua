--[[ Hand back fetched jobs a worker will not start: each becomes a fresh entry at the end of
the stream, atomically, with its fields (and attempt) unchanged.

KEYS[1]  {prefix:queue}:stream  (stream)  the jobs' entries
KEYS[2]  {prefix:queue}:dead    (stream)  where an entry too large to copy goes instead
KEYS[3]  {prefix:queue}:stats   (hash)    "dead_lettered" grows for those
KEYS[4]  {prefix:queue}:cancelled       (zset)  job ids cancelled meanwhile: not handed back
ARGV[1]  consumer group
ARGV[2..] entry ids

Returns: {the number of entries handed back, {entry id, job id, task, attempt, ...} of each job
cancelled meanwhile: left pending, for the caller to settle with settle_cancelled.lua}. Ids no
longer pending are skipped; an entry deleted while pending is only cleared from the pending list.
]]
local rcall = redis.call
local stream = KEYS[1]
local dead = KEYS[2]
local stats = KEYS[3]
local cancelled = KEYS[4]
local group = ARGV[1]

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      return fields[i + 1]
    end
  end
  return nil
end
local dropped = {}

local released = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local entries = rcall('XRANGE', stream, id, id)
  if #entries == 0 then
    rcall('XACK', stream, group, id)  -- deleted while pending: nothing to hand back, clear the PEL
  elseif #entries[1][2] > 7000 and rcall('XACK', stream, group, id) == 1 then
    -- too many fields for one XADD (Lua's unpack limit): dead-lettered with their count
    local now = rcall('TIME')
    rcall('XADD', dead, '*', 'fields_dropped', tostring(#entries[1][2] / 2),
          'dead_reason', string.format('entry has %d fields, too many to hand back', #entries[1][2] / 2),
          'dead_error_type', '', 'dead_error', '', 'dead_traceback', '',
          'dead_at', string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000)), 'dead_entry_id', id)
    rcall('XDEL', stream, id)
    rcall('HINCRBY', stats, 'dead_lettered', 1)
  elseif #entries[1][2] > 7000 then
    -- not pending any more: someone else settled it
  else
    local fields = entries[1][2]
    local job = field(fields, 'id')
    if job and rcall('ZSCORE', cancelled, job) then
      -- cancelled while held: it never runs. Left pending for the caller to settle as
      -- cancelled (settle_cancelled.lua records its outcome in the same step).
      if #rcall('XPENDING', stream, group, id, id, 1) > 0 then
        for _, value in ipairs({id, job, field(fields, 'task') or '', field(fields, 'attempt') or '1'}) do
          dropped[#dropped + 1] = value
        end
      end
    elseif rcall('XACK', stream, group, id) == 1 then
      rcall('XADD', stream, '*', unpack(fields))
      rcall('XDEL', stream, id)
      released = released + 1
    end
  end
end
return {released, dropped}
