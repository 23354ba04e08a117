-- wrk script: client-credentials token requests (as token.lua) whose access
-- tokens are written to BENCH_SAVE_FILE, one per line; the thread stops
-- after BENCH_SAVE_N of them.
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")

local out = io.open(os.getenv("BENCH_SAVE_FILE"), "w")
local want = tonumber(os.getenv("BENCH_SAVE_N"))
local got = 0

response = function(status, headers, body)
	if got >= want then
		return
	end
	local t = body:match('"access_token":"([^"]+)"')
	if t then
		out:write(t, "\n")
		got = got + 1
	end
	if got == want then
		out:close()
		wrk.thread:stop()
	end
end
