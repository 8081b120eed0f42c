-- wrk script: POST /api/v1/wallets/:id/transfer with a unique Idempotency-Key per request.
-- Reads the wallet ids (one per line) and the bearer token from files named by env vars
-- BENCH_WALLETS and BENCH_TOKEN. BENCH_MODE=hot sends every transfer to the first wallet.
local ids = {}
local token, mode, n
local counter = 0
local tid = 0

local function load()
  for line in io.lines(os.getenv("BENCH_WALLETS")) do ids[#ids + 1] = line end
  local f = io.open(os.getenv("BENCH_TOKEN"), "r")
  token = f:read("*l")
  f:close()
  mode = os.getenv("BENCH_MODE") or "uniform"
  n = #ids
end

local thread_seq = 0
function setup(thread)
  thread_seq = thread_seq + 1
  thread:set("tid", thread_seq)
end

function init(args)
  load()
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

function request()
  counter = counter + 1
  local src, dst
  if mode == "hot" then
    src = math.random(2, n)
    dst = 1
  else
    src = math.random(1, n)
    local r = math.random(1, n - 1)
    dst = ((src - 1 + r) % n) + 1
  end
  local amount = string.format("0.%02d", math.random(1, 99))
  local body = '{"destination_wallet_id":"' .. ids[dst] .. '","amount":"' .. amount .. '","description":"bench"}'
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. tostring(tid) .. "-" .. tostring(counter) .. "-" .. tostring(math.random(1, 1e9)),
  }
  return wrk.format("POST", "/api/v1/wallets/" .. ids[src] .. "/transfer", headers, body)
end
