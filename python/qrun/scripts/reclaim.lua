--[[ Redeliver, or dead-letter, jobs whose worker stopped answering for them.

A pending entry idle longer than the visibility timeout belongs to a worker that died (the
supervisor keeps its live workers' jobs fresh). When the supervisor saw the worker die, it
knows from the worker's slot which job was running: only that entry is charged a delivery
(ARGV[8]); the others were fetched but never started (or finished, their ack lost with the
worker), and go back with their delivery count unchanged. A stream cannot un-deliver an entry, so each
one is copied to a fresh entry at the end of the stream, with the deliveries so far in its
`deliveries` field, and the old entry is acked and deleted. A job delivered max-deliveries
times without an ack goes to the dead stream instead. Atomic per entry, so any number of
supervisors on any number of hosts may run it at once: an entry is settled by one of them.

KEYS[1]  {prefix:queue}:stream  (stream)  the pending entries
KEYS[2]  {prefix:queue}:dead    (stream)  dead-lettered jobs
KEYS[3]  {prefix:queue}:stats   (hash)    "redelivered" / "dead_lettered" grow
KEYS[4]  {prefix:queue}:leases  (zset)    entry id -> ms until which a job asked to stay hidden
KEYS[5]  {prefix:queue}:cancelled       (zset)  job ids cancelled while held: never redelivered
ARGV[1]  consumer group
ARGV[2]  minimum idle time, ms
ARGV[3]  first entry id to look at: '-' or '(<id>' (exclusive, to go on after a batch)
ARGV[4]  most pending entries to look at
ARGV[5]  max deliveries
ARGV[6]  now, ms since the epoch
ARGV[7]  only this consumer's entries ('' = every consumer)
ARGV[8]  which entries are charged a delivery: '*' every one (nobody knows what ran), else
         only the entry with this id ('' = none: the worker was between jobs)
ARGV[9..] consumers known to be alive (the caller's own workers): their entries are skipped

Returns: {last id looked at ('' if none), entries looked at, redelivered, dead-lettered,
          {job id, task, attempt, reason, ...} of each job dead-lettered (for events; '' if unknown),
          {entry id, job id, task, attempt, ...} of each cancelled job: left pending for the caller
          to settle with settle_cancelled.lua}
]]
local rcall = redis.call
local stream = KEYS[1]
local dead = KEYS[2]
local stats = KEYS[3]
local leases = KEYS[4]
local cancelled = KEYS[5]
local group = ARGV[1]
local max_deliveries = tonumber(ARGV[5])
local now = ARGV[6]
local charged = ARGV[8]
local MAX_FIELDS = 7000
local alive = {}
for i = 9, #ARGV do
  alive[ARGV[i]] = true
end

rcall('ZREMRANGEBYSCORE', leases, '-inf', now)

local pending
if ARGV[7] == '' then
  pending = rcall('XPENDING', stream, group, 'IDLE', ARGV[2], ARGV[3], '+', ARGV[4])
else
  pending = rcall('XPENDING', stream, group, 'IDLE', ARGV[2], ARGV[3], '+', ARGV[4], ARGV[7])
end

local last = ''
local redelivered = 0
local dead_lettered = 0
local dead_jobs = {}
local cancelled_jobs = {}
for _, info in ipairs(pending) do
  local id = info[1]
  last = id
  local keep = false
  if not alive[info[2]] and not rcall('ZSCORE', leases, id) then
    local entries = rcall('XRANGE', stream, id, id)
    if #entries > 0 then
      local fields = entries[1][2]
      local charge = charged == '*' or charged == id
      local deliveries = charge and info[4] or 0
      local slot = nil
      local reason = nil
      if #fields > MAX_FIELDS then  -- more than one XADD can take (Lua's unpack limit)
        reason = string.format('entry has %d fields, too many to redeliver', #fields / 2)
        fields = {'fields_dropped', tostring(#fields / 2)}
      end
      local known = {id = '', task = '', attempt = '1'}
      for i = 1, #fields, 2 do
        if fields[i] == 'deliveries' then
          slot = i + 1
          deliveries = deliveries + (tonumber(fields[i + 1]) or 0)
        elseif known[fields[i]] then
          known[fields[i]] = fields[i + 1]
        end
      end
      if known.id ~= '' and rcall('ZSCORE', cancelled, known.id) then
        -- cancelled while held: never redelivered. Left pending for the caller to settle
        -- with settle_cancelled.lua (outcome and marks in one step).
        keep = true
        for _, value in ipairs({id, known.id, known.task, known.attempt}) do
          cancelled_jobs[#cancelled_jobs + 1] = value
        end
      elseif reason or deliveries >= max_deliveries then
        reason = reason or string.format('delivered %d times without ack (worker died?)', deliveries)
        local extra = {'dead_reason', reason, 'dead_error_type', '', 'dead_error', '',
                       'dead_traceback', '', 'dead_at', now, 'dead_entry_id', id}
        for _, value in ipairs(extra) do
          fields[#fields + 1] = value
        end
        rcall('XADD', dead, '*', unpack(fields))
        dead_lettered = dead_lettered + 1
        for _, value in ipairs({known.id, known.task, known.attempt, reason}) do
          dead_jobs[#dead_jobs + 1] = value
        end
      else
        if slot then
          fields[slot] = tostring(deliveries)
        elseif charge then
          fields[#fields + 1] = 'deliveries'
          fields[#fields + 1] = tostring(deliveries)
        end
        rcall('XADD', stream, '*', unpack(fields))
        redelivered = redelivered + 1
      end
    end
    if not keep then
      rcall('XACK', stream, group, id)  -- an entry deleted while pending is only cleared
      rcall('XDEL', stream, id)
    end
  end
end
if redelivered > 0 then
  rcall('HINCRBY', stats, 'redelivered', redelivered)
end
if dead_lettered > 0 then
  rcall('HINCRBY', stats, 'dead_lettered', dead_lettered)
end
return {last, #pending, redelivered, dead_lettered, dead_jobs, cancelled_jobs}
