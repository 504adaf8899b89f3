--[[ Look for a job's entry by its job id, a slice of a stream at a time (the stream is
ordered by entry id, not job id; the caller goes on from `last` until it is '').

KEYS[1]  {prefix:queue}:stream or {prefix:queue}:dead  (stream)
ARGV[1]  job id
ARGV[2]  first entry id to look at: '-' or '(<id>' (exclusive)
ARGV[3]  most entries to look at in this call

Returns: {entry id ('' if not in this slice), its fields (flat; {} if none),
          last id looked at ('' once the end of the stream was reached)}
]]
local rcall = redis.call
local job_id = ARGV[1]
local count = tonumber(ARGV[3])

local entries = rcall('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', count)
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'id' then
      if fields[i + 1] == job_id then
        return {entry[1], fields, ''}
      end
      break
    end
  end
end
local last = ''
if #entries == count then
  last = entries[#entries][1]
end
return {'', {}, last}
