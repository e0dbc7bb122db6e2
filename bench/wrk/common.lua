-- Shared by the wrk scripts of bench/http_bench.sh (loaded with dofile from
-- each script, in wrk's main state and in every thread's state).
--
-- Environment (set by http_bench.sh):
--   RECUR_BENCH_KEY   the tenant's API key (Authorization: Bearer …)
--   RECUR_BENCH_IDS   a file with one subscription id per line
--   RECUR_BENCH_NAME  the figure's name in the JSON line done() prints
--
-- setup() gives thread k the ids at positions k, k+T, k+2T… (T threads);
-- response() counts non-2xx answers per thread; done() prints one JSON
-- object: requests, req/s, latency percentiles (ms), non-2xx and socket
-- errors summed over the threads.

local common = {}

local threads = {}

function common.read_ids()
  local path = assert(os.getenv("RECUR_BENCH_IDS"), "RECUR_BENCH_IDS unset")
  local ids = {}
  for line in io.lines(path) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  assert(#ids > 0, "no ids in " .. path)
  return ids
end

function common.headers()
  local key = assert(os.getenv("RECUR_BENCH_KEY"), "RECUR_BENCH_KEY unset")
  return {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
end

-- Main state: remember the thread and hand it its index; init() slices.
function common.setup(thread)
  thread:set("index", #threads)
  threads[#threads + 1] = thread
end

-- Thread state: the ids of this thread's slice. The thread count is only
-- known in the main state, so it comes through the environment.
function common.my_ids()
  local all = common.read_ids()
  local count = tonumber(os.getenv("RECUR_BENCH_THREADS") or "1")
  local mine = {}
  for i = wrk.thread:get("index") + 1, #all, count do
    mine[#mine + 1] = all[i]
  end
  return mine
end

function common.done(summary, latency)
  local non2xx, starved = 0, 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + (t:get("non2xx") or 0)
    starved = starved + (t:get("starved") or 0)
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"bench":"%s","requests":%d,"duration_s":%.2f,"rps":%.0f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non_2xx":%d,"starved":%d,"socket_errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d}}\n',
    os.getenv("RECUR_BENCH_NAME") or "wrk", summary.requests, seconds,
    summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, non2xx, starved, e.connect, e.read, e.write,
    e.timeout))
end

return common
