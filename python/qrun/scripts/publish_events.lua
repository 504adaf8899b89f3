--[[ Publish a batch of job lifecycle events: each on its job's channel, all of them at once on `all`.

KEYS     none: channels are not keys (PUBLISH reaches subscribers on every node of a cluster)
ARGV[1]  the all channel, <prefix>:events:all
ARGV[2]  the job channel prefix, <prefix>:events:job:
ARGV[3..] job id, message, job id, message, ... (each message a compact JSON object)

Returns: the number of events published. The all channel gets ONE message per call: the JSON
array of the batch's messages, in order, so it costs one publish per batch, not per event.
]]
local rcall = redis.call
local all_channel = ARGV[1]
local job_prefix = ARGV[2]

local messages = {}
for i = 3, #ARGV - 1, 2 do
  rcall('PUBLISH', job_prefix .. ARGV[i], ARGV[i + 1])
  messages[#messages + 1] = ARGV[i + 1]
end
if #messages > 0 then
  rcall('PUBLISH', all_channel, '[' .. table.concat(messages, ',') .. ']')
end
return #messages
