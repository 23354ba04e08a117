package caddyoauth

import "time"

// verdict is how attempt would judge the next attempt, without holding
// it: for tests that look at the counts.
func (t *loginThrottle) verdict(username, ip string, knownDevice bool) (delay, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.judge(username, ip, knownDevice, t.now())
}

// failed records a failure for the account and the address, as a settled
// failed attempt does: for tests that set counts up.
func (t *loginThrottle) failed(username, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.bump(t.accounts, accountKey(username), now)
	t.bump(t.ips, ip, now)
}
