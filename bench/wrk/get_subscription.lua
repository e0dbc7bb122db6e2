-- GET /v1/subscriptions/{id}, round robin over this thread's subscriptions.
-- See common.lua for the environment and the JSON line printed at the end.
local common = dofile(os.getenv("RECUR_BENCH_WRK_DIR") .. "/common.lua")

local requests_by_id = {}
local next_index = 1
non2xx = 0
starved = 0

function setup(thread) common.setup(thread) end

function init(_)
  local headers = common.headers()
  headers["Content-Type"] = nil
  for i, id in ipairs(common.my_ids()) do
    requests_by_id[i] = wrk.format("GET", "/v1/subscriptions/" .. id, headers)
  end
end

function request()
  local r = requests_by_id[next_index]
  next_index = next_index % #requests_by_id + 1
  return r
end

function response(status, _, _)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, _) common.done(summary, latency) end
