-- Durable lifecycle commands: POST /v1/subscriptions/{id}/pause and /resume,
-- alternating per subscription, so that each command is a valid transition.
--
-- wrk's scripts cannot tell connections apart, so a subscription is never
-- tied to a connection; instead each thread keeps a pool of idle
-- subscriptions: request() takes one out, response() reads the id and the
-- new status from the answer and puts it back with the next command. A
-- subscription is therefore in flight on at most one connection at a time
-- (commands to one subscription never race), as long as the pool holds at
-- least as many subscriptions as the thread has connections. A non-2xx
-- answer loses its subscription (its id is not in a problem body); when the
-- pool runs dry, request() asks for a subscription that does not exist
-- (counted as `starved` and as non-2xx: the run is not a result).
local common = dofile(os.getenv("RECUR_BENCH_WRK_DIR") .. "/common.lua")

local headers
local idle = {} -- stack of {id, command}
non2xx = 0
starved = 0

function setup(thread) common.setup(thread) end

function init(_)
  headers = common.headers()
  -- Every subscription starts active (http_bench.sh waits for that).
  for _, id in ipairs(common.my_ids()) do
    idle[#idle + 1] = {id, "pause"}
  end
end

function request()
  local item = table.remove(idle)
  if item == nil then
    starved = starved + 1
    item = {"sub_bench_starved", "pause"}
  end
  return wrk.format("POST", "/v1/subscriptions/" .. item[1] .. "/" .. item[2],
                    headers, "{}")
end

function response(status, _, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    return
  end
  local id = body:match('^{"id":"([^"]+)"')
  local state = body:match('"status":"([a-z_]+)"')
  if id == nil or state == nil then
    non2xx = non2xx + 1 -- a 2xx we cannot read: treat as an error
    return
  end
  idle[#idle + 1] = {id, state == "paused" and "resume" or "pause"}
end

function done(summary, latency, _) common.done(summary, latency) end
