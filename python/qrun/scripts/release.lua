--[[ Hand back fetched jobs a worker will not start: each becomes a fresh entry at the end of
the stream, atomically, with its fields (and attempt) unchanged.

KEYS[1]  {prefix:queue}:stream  (stream)  the jobs' entries
KEYS[2]  {prefix:queue}:dead    (stream)  where an entry too large to copy goes instead
KEYS[3]  {prefix:queue}:stats   (hash)    "dead_lettered" grows for those
KEYS[4]  {prefix:queue}:cancelled       (zset)  job ids cancelled meanwhile: dropped, not handed back
KEYS[5]  {prefix:queue}:cancel_entries  (zset)  their entry marks are cleared
ARGV[1]  consumer group
ARGV[2..] entry ids

Returns: {the number of entries handed back, {job id, task, attempt, ...} of each job dropped
because it was cancelled meanwhile (the caller records their outcome; their job ids stay in
KEYS[4] until then, so their status says cancelled)}. Ids no longer pending are skipped; an
entry deleted while pending is only cleared from the pending list.
]]
local rcall = redis.call
local stream = KEYS[1]
local dead = KEYS[2]
local stats = KEYS[3]
local cancelled = KEYS[4]
local cancel_entries = KEYS[5]
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
  elseif rcall('XACK', stream, group, id) == 1 then
    local job = field(entries[1][2], 'id')
    if job and rcall('ZSCORE', cancelled, job) then
      rcall('ZREM', cancel_entries, id)  -- cancelled while held: it never runs
      for _, value in ipairs({job, field(entries[1][2], 'task') or '', field(entries[1][2], 'attempt') or '1'}) do
        dropped[#dropped + 1] = value
      end
    else
      rcall('XADD', stream, '*', unpack(entries[1][2]))
      released = released + 1
    end
    rcall('XDEL', stream, id)
  end
end
return {released, dropped}
