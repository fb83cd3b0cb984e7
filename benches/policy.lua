-- wrk script for benches/policy.sh: Dovecot auth policy requests, an allow then the
-- report of the same login, over a population of accounts and client addresses.
-- A quarter of the logins succeed; the rest are failures with a new password hash
-- each, so the policy's tables grow and its counters move.
--
--   wrk -t1 -c32 -d10s --latency -s benches/policy.lua http://127.0.0.1:PORT
--
-- Environment: POLICY_SECRET (sent as X-API-Key), ACCOUNTS (default 100000),
-- SOURCES (default 50000).

local secret = os.getenv("POLICY_SECRET") or ""
local accounts = tonumber(os.getenv("ACCOUNTS") or "100000")
local sources = tonumber(os.getenv("SOURCES") or "50000")
local n = 0
local body = ""

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = secret

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or 1)
end

local function login()
  local a = math.random(0, accounts - 1)
  local s = math.random(0, sources - 1)
  local remote = string.format("10.%d.%d.%d", math.floor(s / 65536) % 256, math.floor(s / 256) % 256, s % 256)
  local pw = string.format("%04x", math.random(0, 65535))
  return string.format(
    '"device_id":"","login":"user%d@example.org","protocol":"imap","pwhash":"%s","remote":"%s","session_id":"s%d"',
    a, pw, remote, n)
end

function request()
  n = n + 1
  if n % 2 == 1 then
    body = login()
    return wrk.format(nil, "/?command=allow", nil, "{" .. body .. "}")
  end
  local success = (math.random(1, 4) == 1) and "true" or "false"
  return wrk.format(nil, "/?command=report", nil,
    "{" .. body .. ',"success":' .. success .. ',"policy_reject":false}')
end
