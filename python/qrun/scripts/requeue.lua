--[[ Move a batch of dead letters back onto the work stream, atomically per batch.

For each dead entry still there: its job fields (id, task, args, kwargs, attempt,
enqueued_at, as the caller read them; the dead_* fields and `deliveries` left out) are added
as a fresh entry at the end of the stream, the dead entry is deleted, and the job's dead
outcome and record are deleted. An entry already gone (another requeue or a delete ran) is
skipped, so an interrupted bulk requeue can simply be run again: dead entries never change,
so one that is still there holds the fields the caller read. A unique job is requeued only if
no other job holds its claim; it then takes (or renews) the claim.

KEYS[1]  {prefix:queue}:dead    (stream)  dead letters
KEYS[2]  {prefix:queue}:stream  (stream)  ready jobs
KEYS[3]  {prefix:queue}:stats   (hash)    "requeued" grows by the number requeued
KEYS[4..] per entry, in ARGV order: {prefix:queue}:done:<job id> (list, the dead outcome,
         deleted), {prefix:queue}:job:<job id> (hash, the dead run's record, deleted), and,
         for an entry with a claim to respect, {prefix:queue}:unique:<digest> (string)
ARGV     nine values per entry: dead entry id; the six job field values in field order (id,
         task, args, kwargs, attempt, enqueued_at); '1' if a claim key follows its two keys
         in KEYS, else '0'; claim ttl in ms ('0': respect a claim another job holds, take none)

Returns: {requeued, {two values per entry: what happened ('requeued' | 'gone' | 'claimed'),
          the job id holding the claim ('' unless 'claimed')}}
]]
local rcall = redis.call
local dead = KEYS[1]
local stream = KEYS[2]
local stats = KEYS[3]

local requeued = 0
local outcomes = {}
local key_index = 4
for i = 1, #ARGV, 9 do
  local dead_id, job_id, claim_ttl = ARGV[i], ARGV[i + 1], ARGV[i + 8]
  local done_key, record_key = KEYS[key_index], KEYS[key_index + 1]
  key_index = key_index + 2
  local claim = nil
  if ARGV[i + 7] == '1' then
    claim = KEYS[key_index]
    key_index = key_index + 1
  end
  local outcome = 'requeued'
  local holder = ''
  if claim then
    local current = rcall('GET', claim)
    if current and current ~= job_id then
      outcome = 'claimed'
      holder = current
    end
  end
  if outcome == 'requeued' then
    if rcall('XDEL', dead, dead_id) == 0 then
      outcome = 'gone'
    else
      if claim and claim_ttl ~= '0' then
        rcall('SET', claim, job_id, 'PX', claim_ttl)
      end
      rcall('XADD', stream, '*',
        'id', job_id, 'task', ARGV[i + 2], 'args', ARGV[i + 3], 'kwargs', ARGV[i + 4],
        'attempt', ARGV[i + 5], 'enqueued_at', ARGV[i + 6])
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
