-- POST /give with a valid one-time gift form, a new email each time (the per-email limit and
-- donor matching see distinct readers). Arguments: the session cookie and the CSRF token bound
-- to it, fetched once from GET /give. Counts 303 redirects to Stripe Checkout, and the rest.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  cookie = args[1]
  token = args[2]
  sent = 0
  redirected = 0
  other = 0
end

function request()
  sent = sent + 1
  local body = "csrf_token=" .. token
    .. "&frequency=one_time&amount_choice=5000&custom_amount=&name=Bench+Reader"
    .. "&email=reader-" .. tid .. "-" .. sent .. "%40example.org&postal_code=94110&tribute_kind=&tribute_name=&website="
  return wrk.format("POST", "/give", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie,
  }, body)
end

function response(status, headers, body)
  local location = headers["Location"] or ""
  if status == 303 and location:find("https://checkout.stripe.com/", 1, true) == 1 then
    redirected = redirected + 1
  else
    other = other + 1
    if other <= 3 then
      io.write("unexpected answer " .. status .. " " .. location .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("redirected")
    bad = bad + thread:get("other")
  end
  io.write(string.format('BENCH-JSON {"redirected": %d, "other": %d}\n', ok, bad))
end
