#!/usr/bin/awk -f
# Tables of bench/load.sh from its results file, lines of
# "scenario build round value p50 p99" (value: req/s, or MB for rss_*).
# Each ratio pairs the two scenarios of one round and build; the median is
# of those per-round ratios. Called as
#   report.awk -v rounds=5 -v builds="before after" results
{
	v[$1, $2, $3] = $4
	p50[$1, $2] = $5
	p99[$1, $2] = $6
	if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1 }
}

function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

# row: one ratio (op "/") or difference (op "-") per build.
function row(label, num, den, op, goal,    nb, bl, k, b, r, n, a, s, x) {
	if (!((num SUBSEP "x") in have) || !((den SUBSEP "x") in have)) return
	nb = split(builds, bl, " ")
	for (k = 1; k <= nb; k++) {
		b = bl[k]; n = 0; s = ""
		for (r = 1; r <= rounds; r++) {
			if (!((num, b, r) in v) || !((den, b, r) in v)) continue
			x = op == "/" ? v[num, b, r] / v[den, b, r] : v[num, b, r] - v[den, b, r]
			a[++n] = x
			s = s (s == "" ? "" : " ") sprintf(op == "/" ? "%.2f" : "%+.1f", x)
		}
		if (n == 0) continue
		printf "| %s | %s | %s | **" (op == "/" ? "%.2f" : "%+.1f MB") "** | %s |\n", (k == 1 ? label : ""), b, s, median(a, n), (k == 1 ? goal : "")
	}
}

END {
	nb = split(builds, bl, " ")
	for (i = 1; i <= ns; i++) have[order[i], "x"] = 1

	print "| ratio | build | per round | median | goal |"
	print "| --- | --- | --- | ---: | --- |"
	row("protected route, one token / bare proxy", "protected", "reverse_proxy", "/", "≥ 0.97")
	row("the same over HTTPS / bare proxy over HTTPS", "https_protected", "https_proxy", "/", "≥ 0.97")
	row("control: bare proxy sent the same Authorization / bare proxy", "control", "reverse_proxy", "/", "")
	row("protected route / control", "protected", "control", "/", "")
	row("protected route, 10,000 distinct tokens / bare proxy", "many_tokens", "reverse_proxy", "/", "≥ 0.95")
	row("protected route, every token new, issued here / bare proxy", "fresh_issued", "reverse_proxy", "/", "≥ 0.85")
	row("protected route, every token new, full ES256 verification / bare proxy", "fresh_minted", "reverse_proxy", "/", "≥ 0.85")
	row("token endpoint (SHA-256 secret, ES256) / respond to the same POST", "token_endpoint", "respond_post", "/", "≥ 0.5")
	row("token endpoint, EdDSA signing key / respond", "token_eddsa", "respond_post", "/", "")
	row("token endpoint, bcrypt secret (check remembered) / respond", "token_bcrypt", "respond_post", "/", "≥ 0.5")
	row("token endpoint, Redis store / respond", "token_redis", "respond_post", "/", "≥ 0.45")
	row("token endpoint, bcrypt secret, EdDSA key / respond", "token_bcrypt_eddsa", "respond_post", "/", "")
	row("token endpoint, Redis store, EdDSA key / respond", "token_redis_eddsa", "respond_post", "/", "")
	row("RSS, 10,000 distinct tokens − bare proxy", "rss_many", "rss_proxy", "-", "≤ +20 MB")
	row("RSS, every token new (cache full) − bare proxy", "rss_fresh", "rss_proxy", "-", "≤ +20 MB")

	print ""
	print "| scenario | build | per round (req/s; MB for rss_*) | median | p50 / p99 (last round) |"
	print "| --- | --- | --- | ---: | --- |"
	for (i = 1; i <= ns; i++) {
		sc = order[i]
		for (k = 1; k <= nb; k++) {
			b = bl[k]; n = 0; s = ""
			for (r = 1; r <= rounds; r++) {
				if (!((sc, b, r) in v)) continue
				a[++n] = v[sc, b, r]
				s = s (s == "" ? "" : " ") sprintf("%.0f", v[sc, b, r])
			}
			if (n == 0) continue
			printf "| %s | %s | %s | " (sc ~ /^rss_/ ? "%.1f" : "%.0f") " | %s |\n", (k == 1 ? sc : ""), b, s, median(a, n), (p50[sc, b] == "-" ? "" : p50[sc, b] " / " p99[sc, b])
		}
	}
}
