-- wrk script for scenario 5: sends pre-signed requests (loadtest/sigreqs.c),
-- each exactly once, in file order. Usage (one wrk thread per file):
--   PQ_SIGNED_FILE=FILE wrk -t1 -c16 -d10s -s wrk-signed.lua URL
-- FILE: records of "%08d\n" length + the raw request. When the file runs
-- out, an unsigned request to the same path is sent instead (the proxy
-- answers 401, counted by wrk as a status error) and `exhausted` counts it,
-- so a too-small file shows up in the result instead of replaying nonces.
local threads = {}
local f = nil
local fallback = nil
exhausted = 0
sent = 0

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  f = assert(io.open(os.getenv("PQ_SIGNED_FILE") or args[1], "rb"))
  fallback = wrk.format("POST", "/v1/signed/exhausted", {["Host"] = "model.example",
                        ["Content-Type"] = "application/json"}, "{}")
end

request = function()
  local len = f:read(9)
  if len == nil then
    exhausted = exhausted + 1
    return fallback
  end
  sent = sent + 1
  return f:read(tonumber(len))
end

done = function(summary, latency, requests)
  local ex, sn = 0, 0
  for _, t in ipairs(threads) do
    ex = ex + (t:get("exhausted") or 0)
    sn = sn + (t:get("sent") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "PQRESULT requests=%d duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d p50=%d p90=%d p99=%d p999=%d max=%d mean=%.1f signed_sent=%d signed_exhausted=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, sn, ex))
end
