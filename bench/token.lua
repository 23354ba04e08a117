-- wrk script: a client-credentials token request with HTTP Basic auth.
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
