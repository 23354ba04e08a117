package caddyoauth

import (
	"strings"
	"sync"
	"time"
)

// Login throttling. Failed sign-ins are counted per account and per client
// IP address. Past a few failures each further attempt is slowed down,
// doubling up to throttleMaxDelay; past a limit the attempt is refused with
// 429 until throttleWindow has passed since the last failure. An attacker
// guessing one account's password is stopped by the account count; one
// spraying a password over many accounts from one address, by the address
// count. The counts are per instance, kept in memory: a cluster of n
// gateways lets at most n times the limit through.
const (
	throttleWindow      = 15 * time.Minute
	throttleAccountSlow = 3
	throttleAccountStop = 10
	throttleIPSlow      = 10
	throttleIPStop      = 50
	throttleBaseDelay   = 250 * time.Millisecond
	throttleMaxDelay    = 4 * time.Second
	throttleMaxEntries  = 100000
)

type failureCount struct {
	n    int
	last time.Time
}

// loginThrottle counts recent failed sign-ins.
type loginThrottle struct {
	mu       sync.Mutex
	accounts map[string]*failureCount
	ips      map[string]*failureCount
	// devices counts failures per known-device cookie, and inflight
	// holds the cookies whose sign-in is being checked (device.go).
	devices  map[string]*failureCount
	inflight map[string]bool
	now      func() time.Time
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{
		accounts: make(map[string]*failureCount),
		ips:      make(map[string]*failureCount),
		devices:  make(map[string]*failureCount),
		inflight: make(map[string]bool),
		now:      time.Now,
	}
}

// accountKey folds case, so Bob and bob share a count.
func accountKey(username string) string { return strings.ToLower(username) }

// verdict says how to treat the next attempt: wait delay first, or refuse
// it outright for retryAfter. An attempt from a known device of the
// account (device.go) is judged by the address's count alone.
func (t *loginThrottle) verdict(username, ip string, knownDevice bool) (delay, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.judge(username, ip, knownDevice, t.now())
}

func (t *loginThrottle) judge(username, ip string, knownDevice bool, now time.Time) (delay, retryAfter time.Duration) {
	a := t.count(t.accounts, accountKey(username), now)
	if knownDevice {
		a = 0
	}
	i := t.count(t.ips, ip, now)
	if a >= throttleAccountStop || i >= throttleIPStop {
		return 0, throttleWindow
	}
	return max(slowdown(a, throttleAccountSlow), slowdown(i, throttleIPSlow)), 0
}

// attempt is verdict for a sign-in about to be checked, which it counts
// as a failure at once unless it refuses it: concurrent attempts each see
// the ones before them, so a burst cannot pass the judgement together
// while none of its failures is recorded yet and guess past the limit
// (check-then-record). The caller settles the attempt when it knows
// how it ended.
func (t *loginThrottle) attempt(username, ip string, knownDevice bool) (delay, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	delay, retryAfter = t.judge(username, ip, knownDevice, now)
	if retryAfter == 0 {
		t.bump(t.accounts, accountKey(username), now)
		t.bump(t.ips, ip, now)
	}
	return delay, retryAfter
}

// attemptOutcome is how a counted sign-in attempt ended.
type attemptOutcome int

const (
	attemptNotChecked attemptOutcome = iota // busy, store error, client gone: no guess was made
	attemptFailed                           // wrong username or password
	attemptSucceeded
)

// settle ends an attempt that attempt counted: a failure stays counted;
// an attempt whose password was not checked is taken back; a success
// takes back its address count and clears the account's (a known
// device's success takes back only its own: it says nothing about
// guesses made elsewhere).
func (t *loginThrottle) settle(username, ip string, knownDevice bool, o attemptOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch o {
	case attemptFailed:
		return
	case attemptSucceeded:
		if !knownDevice {
			delete(t.accounts, accountKey(username))
		} else {
			unbump(t.accounts, accountKey(username))
		}
	default:
		unbump(t.accounts, accountKey(username))
	}
	unbump(t.ips, ip)
}

// unbump takes back one count under key.
func unbump(m map[string]*failureCount, key string) {
	if c, ok := m[key]; ok {
		if c.n--; c.n <= 0 {
			delete(m, key)
		}
	}
}

// accountOver reports whether username's account is over its failure
// limit (a refusal for the address alone is not a lockout).
func (t *loginThrottle) accountOver(username string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count(t.accounts, accountKey(username), t.now()) >= throttleAccountStop
}

func slowdown(n, from int) time.Duration {
	if n < from {
		return 0
	}
	d := throttleBaseDelay << min(n-from, 8)
	return min(d, throttleMaxDelay)
}

// count returns the live failure count under key.
func (t *loginThrottle) count(m map[string]*failureCount, key string, now time.Time) int {
	c, ok := m[key]
	if !ok {
		return 0
	}
	if now.Sub(c.last) >= throttleWindow {
		delete(m, key)
		return 0
	}
	return c.n
}

// addressVerdict is verdict for the address alone (sign-ups).
func (t *loginThrottle) addressVerdict(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count(t.ips, ip, t.now()) >= throttleIPStop {
		return throttleWindow
	}
	return 0
}

// addressFailed counts an attempt against the address alone.
func (t *loginThrottle) addressFailed(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bump(t.ips, ip, t.now())
}

// failed records a failed attempt that attempt did not count.
func (t *loginThrottle) failed(username, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.bump(t.accounts, accountKey(username), now)
	t.bump(t.ips, ip, now)
}

// claimDevice reports whether a sign-in with the device cookie id (its
// MAC already checked) may take a reserved slow-hash slot: not while
// another sign-in with the same cookie is being checked, and not once the
// cookie failed deviceFailuresStop times in throttleWindow. A stolen or
// shared cookie thus buys at most one guess at a time, and a few in all.
// A true answer must be followed by releaseDevice.
func (t *loginThrottle) claimDevice(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inflight[id] || t.count(t.devices, id, t.now()) >= deviceFailuresStop {
		return false
	}
	if len(t.inflight) >= throttleMaxEntries {
		return false
	}
	t.inflight[id] = true
	return true
}

// releaseDevice ends the claim of claimDevice: a failed password counts
// against the cookie; a right one clears its count (the browser gets a
// fresh cookie anyway).
func (t *loginThrottle) releaseDevice(id string, failed, succeeded bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.inflight, id)
	switch {
	case failed:
		t.bump(t.devices, id, t.now())
	case succeeded:
		delete(t.devices, id)
	}
}

func (t *loginThrottle) bump(m map[string]*failureCount, key string, now time.Time) {
	if c, ok := m[key]; ok && now.Sub(c.last) < throttleWindow {
		c.n++
		c.last = now
		return
	}
	if len(m) >= throttleMaxEntries {
		for k, c := range m {
			if now.Sub(c.last) >= throttleWindow {
				delete(m, k)
			}
		}
		// Still full: forget arbitrary entries rather than grow without
		// bound (the other count still applies to their attempts).
		for k := range m {
			if len(m) < throttleMaxEntries {
				break
			}
			delete(m, k)
		}
	}
	m[key] = &failureCount{n: 1, last: now}
}
