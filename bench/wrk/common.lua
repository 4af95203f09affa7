-- Shared by every scenario: optional pacing (PACE_MS between a connection's requests, for the half-load runs)
-- and a machine-readable summary on stderr.
local pace = tonumber(os.getenv("PACE_MS") or "0")
math.randomseed(os.time())
local non2xx = 0

-- Each wait is drawn between half and one and a half times the pace: with a fixed delay every connection fires at
-- the same moment, and the burst of 8 queues behind itself (p50 became 8 service times at half load).
function delay()
  if pace == 0 then return 0 end
  return pace * (0.5 + math.random())
end

function response(status, headers, body)
  if status < 200 or status >= 300 then
    non2xx = non2xx + 1
    if non2xx <= 3 then io.stderr:write("unexpected " .. status .. ": " .. string.sub(body, 1, 200) .. "\n") end
  end
end

function done(summary, latency, requests)
  io.stderr:write(string.format(
    "RESULT {\"requests\": %d, \"seconds\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"errors\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status
  ))
end
