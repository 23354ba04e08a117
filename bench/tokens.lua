-- wrk script: GET with a different bearer token per request, read from
-- BENCH_TOKEN_FILE (one per line).
--
-- Without BENCH_ONCE the tokens are cycled. With BENCH_ONCE=1 each token is
-- sent once: the thread stops when the responses to all but the last
-- BENCH_CONNS requests have come (the requests still in flight then may
-- reuse a token), and writes "<responses> <seconds>" to BENCH_RATE_FILE.
-- wrk divides by its whole -d duration, which a stopped thread does not
-- fill, so load.sh takes the rate from that file (/proc/uptime: 10 ms).
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKEN_FILE")) do
	tokens[#tokens + 1] = line
end
local once = os.getenv("BENCH_ONCE") == "1"
local target = #tokens - (tonumber(os.getenv("BENCH_CONNS")) or 32)
local i, responses, t0 = 0, 0, nil

local function uptime()
	local f = io.open("/proc/uptime")
	local s = f:read("*n")
	f:close()
	return s
end

request = function()
	i = i + 1
	if i > #tokens then
		i = 1
	end
	if t0 == nil then
		t0 = uptime()
	end
	return wrk.format(nil, nil, { Authorization = "Bearer " .. tokens[i] })
end

if once then
	response = function(status)
		responses = responses + 1
		if responses == target then
			local f = io.open(os.getenv("BENCH_RATE_FILE"), "w")
			f:write(responses, " ", uptime() - t0, "\n")
			f:close()
			wrk.thread:stop()
		end
	end
end
