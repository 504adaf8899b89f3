--[[ Move a batch of dead letters back onto the work stream, atomically per batch.

For each dead entry: its job fields (id, task, args, kwargs, attempt, enqueued_at) are added
as a fresh entry at the end of the stream, and the dead entry is deleted; the dead_* fields
and `deliveries` are dropped. The attempt starts again at 1 unless ARGV[1] keeps it. An entry
already gone (another requeue or a delete ran) is skipped, so an interrupted bulk requeue can
simply be run again. A unique job is requeued only if no other job holds its claim; it then
takes (or renews) the claim.

KEYS[1]  {prefix:queue}:dead    (stream)  dead letters
KEYS[2]  {prefix:queue}:stream  (stream)  ready jobs
KEYS[3]  {prefix:queue}:stats   (hash)    "requeued" grows by the number requeued
KEYS[4..] per entry, in ARGV order: {prefix:queue}:done:<job id> (list, the dead outcome,
         deleted), {prefix:queue}:job:<job id> (hash, the dead run's record, deleted), and,
         for a unique job only, its claim {prefix:queue}:unique:<digest> (string)
ARGV[1]  '1' keep each job's attempt | '0' start again at attempt 1
ARGV[2..] four values per entry: dead entry id, the job id it must hold, '1' if a claim key
         follows its two keys in KEYS ('0': none), claim ttl in ms ('0': respect a claim
         held by another job, take none)

Returns: {requeued, {two values per entry: what happened ('requeued' | 'gone' | 'not a job' |
          'claimed'), the job id holding the claim ('' unless 'claimed')}}
]]
local rcall = redis.call
local dead = KEYS[1]
local stream = KEYS[2]
local stats = KEYS[3]
local keep_attempts = ARGV[1] == '1'

local requeued = 0
local outcomes = {}
local key_index = 4
for i = 2, #ARGV, 4 do
  local dead_id, job_id, claim_ttl = ARGV[i], ARGV[i + 1], ARGV[i + 3]
  local done_key, record_key = KEYS[key_index], KEYS[key_index + 1]
  key_index = key_index + 2
  local claim = nil
  if ARGV[i + 2] == '1' then
    claim = KEYS[key_index]
    key_index = key_index + 1
  end
  local outcome = 'requeued'
  local holder = ''
  local entries = rcall('XRANGE', dead, dead_id, dead_id)
  if #entries == 0 then
    outcome = 'gone'
  else
    local fields = entries[1][2]
    local job = {id = '', task = '', args = '[]', kwargs = '{}', attempt = '1', enqueued_at = '0'}
    for f = 1, #fields, 2 do
      if job[fields[f]] then
        job[fields[f]] = fields[f + 1]
      end
    end
    if job.id == '' or job.task == '' or job.id ~= job_id then
      outcome = 'not a job'
    elseif claim then
      local current = rcall('GET', claim)
      if current and current ~= job_id then
        outcome = 'claimed'
        holder = current
      elseif claim_ttl ~= '0' then
        rcall('SET', claim, job_id, 'PX', claim_ttl)
      end
    end
    if outcome == 'requeued' then
      rcall('XADD', stream, '*',
        'id', job.id, 'task', job.task, 'args', job.args, 'kwargs', job.kwargs,
        'attempt', keep_attempts and job.attempt or '1', 'enqueued_at', job.enqueued_at)
      rcall('XDEL', dead, dead_id)
      rcall('DEL', done_key, record_key)
      requeued = requeued + 1
    end
  end
  outcomes[#outcomes + 1] = outcome
  outcomes[#outcomes + 1] = holder
end
if requeued > 0 then
  rcall('HINCRBY', stats, 'requeued', requeued)
end
return {requeued, outcomes}
