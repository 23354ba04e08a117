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

// failureCount is one account's, address's or device cookie's count.
type failureCount struct {
	n    int       // failures in the window that ends throttleWindow after last
	last time.Time // the latest failure
	// pending counts the attempts let through (attempt) whose password
	// check has not ended: judged as failures meanwhile, they become one
	// (n) or are taken back when settled, without moving last.
	pending int
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

// judge says how to treat the next attempt: wait delay first, or refuse
// it outright for retryAfter. An attempt from a known device of the
// account (device.go) is judged by the address's count alone. The caller
// holds t.mu.
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

// attempt is verdict for a sign-in about to be checked, which it holds
// as a failure until it is settled, unless it refuses it: concurrent
// attempts each see the ones before them, so a burst cannot pass the
// judgement together while none of its failures is recorded yet and guess
// past the limit (check-then-record). The caller settles the attempt when
// it knows how it ended.
func (t *loginThrottle) attempt(username, ip string, knownDevice bool) (delay, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	delay, retryAfter = t.judge(username, ip, knownDevice, now)
	if retryAfter == 0 {
		t.entry(t.accounts, accountKey(username), now).pending++
		t.entry(t.ips, ip, now).pending++
	}
	return delay, retryAfter
}

// attemptOutcome is how an attempt that attempt let through ended.
type attemptOutcome int

const (
	attemptNotChecked attemptOutcome = iota // busy, store error, client gone: no guess was made
	attemptFailed                           // wrong username or password
	attemptSucceeded
)

// settle ends an attempt that attempt let through: a failure is counted
// for the account and the address; an attempt whose password was not
// checked counts for nothing; a success clears the account's failures
// (not the address's: a sign-in to one's own account must not reset a
// spray from that address), unless it came from a known device, which
// says nothing about guesses made elsewhere. Attempts still in flight
// stay held either way.
func (t *loginThrottle) settle(username, ip string, knownDevice bool, o attemptOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now, account := t.now(), accountKey(username)
	t.release(t.accounts, account)
	t.release(t.ips, ip)
	switch o {
	case attemptFailed:
		t.bump(t.accounts, account, now)
		t.bump(t.ips, ip, now)
	case attemptSucceeded:
		if c, ok := t.accounts[account]; ok && !knownDevice {
			c.n = 0
			t.count(t.accounts, account, now) // drops the entry if nothing is in flight
		}
	}
}

// release lets go of one attempt held under key.
func (t *loginThrottle) release(m map[string]*failureCount, key string) {
	if c, ok := m[key]; ok && c.pending > 0 {
		c.pending--
		t.count(m, key, t.now())
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

// count returns the live count under key: the failures of the window and
// the attempts held. An entry with neither is dropped.
func (t *loginThrottle) count(m map[string]*failureCount, key string, now time.Time) int {
	c, ok := m[key]
	if !ok {
		return 0
	}
	if c.n > 0 && now.Sub(c.last) >= throttleWindow {
		c.n = 0
	}
	if c.n == 0 && c.pending == 0 {
		delete(m, key)
		return 0
	}
	return c.n + c.pending
}

// addressAttempt is attempt for the address alone (sign-ups): refused
// for retryAfter, or held until settleAddress.
func (t *loginThrottle) addressAttempt(ip string) (retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.count(t.ips, ip, now) >= throttleIPStop {
		return throttleWindow
	}
	t.entry(t.ips, ip, now).pending++
	return 0
}

// settleAddress ends an attempt of addressAttempt, counting it against
// the address or not.
func (t *loginThrottle) settleAddress(ip string, counted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.release(t.ips, ip)
	if counted {
		t.bump(t.ips, ip, t.now())
	}
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

// releaseDevice ends the claim of claimDevice with the attempt's
// outcome: a failed password counts against the cookie; a right one
// clears its count (the browser gets a fresh cookie anyway).
func (t *loginThrottle) releaseDevice(id string, o attemptOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.inflight, id)
	switch o {
	case attemptFailed:
		t.bump(t.devices, id, t.now())
	case attemptSucceeded:
		delete(t.devices, id)
	}
}

// bump counts a failure under key.
func (t *loginThrottle) bump(m map[string]*failureCount, key string, now time.Time) {
	c := t.entry(m, key, now)
	if c.n > 0 && now.Sub(c.last) >= throttleWindow {
		c.n = 0
	}
	c.n++
	c.last = now
}

// entry returns the count under key, made if there is none. A full map
// first drops its idle entries, then, still full, arbitrary ones without
// attempts in flight rather than grow without bound (the other count
// still applies to their attempts).
func (t *loginThrottle) entry(m map[string]*failureCount, key string, now time.Time) *failureCount {
	if c, ok := m[key]; ok {
		return c
	}
	if len(m) >= throttleMaxEntries {
		for k := range m {
			t.count(m, k, now)
		}
		for k, c := range m {
			if len(m) < throttleMaxEntries {
				break
			}
			if c.pending == 0 {
				delete(m, k)
			}
		}
	}
	c := &failureCount{}
	m[key] = c
	return c
}
