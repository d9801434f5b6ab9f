-- Sends each pre-signed event of a file exactly once, split across wrk's threads, then stops.
-- The file has one delivery a line: the Stripe-Signature header, a tab, the JSON body.
-- Arguments: the file and wrk's thread count. Each thread prints "thread-done" when all of its
-- events are answered (bench/common.py then stops wrk, which reports the real elapsed time).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(args[2])
  signatures, bodies = {}, {}
  local line_number = 0
  for line in io.lines(args[1]) do
    if line_number % nthreads == tid then
      local tab = line:find("\t", 1, true)
      signatures[#signatures + 1] = line:sub(1, tab - 1)
      bodies[#bodies + 1] = line:sub(tab + 1)
    end
    line_number = line_number + 1
  end
  total, sent, answered, failed = #bodies, 0, 0, 0
end

-- Once every event is sent, the idle connections wait instead of sending more.
function delay()
  if sent >= total then return 5000 end
  return 0
end

function request()
  if tid == 0 and not checked then
    -- wrk (4.x) calls request() once on its first thread before the run, to check the script,
    -- and never sends that request: it must not use up an event.
    checked = true
    return wrk.format("GET", "/bench-idle")
  end
  if sent >= total then
    return wrk.format("GET", "/bench-idle")  -- never reached in practice: delay() holds it back
  end
  sent = sent + 1
  return wrk.format("POST", "/stripe/webhook", {
    ["Content-Type"] = "application/json",
    ["Stripe-Signature"] = signatures[sent],
  }, bodies[sent])
end

function response(status, headers, body)
  if status == 404 then return end  -- an idle request, not an event
  answered = answered + 1
  if status ~= 200 then
    failed = failed + 1
    if failed <= 3 then io.write("event answered " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
  if answered == total then
    io.write("thread-done\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local answered_all, failed_all = 0, 0
  for _, thread in ipairs(threads) do
    answered_all = answered_all + thread:get("answered")
    failed_all = failed_all + thread:get("failed")
  end
  io.write(string.format('BENCH-JSON {"answered": %d, "failed": %d, "duration_us": %d}\n',
    answered_all, failed_all, summary.duration))
end
