package caddyoauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
)

// Client secrets: how a presented secret is checked against what the
// configuration holds (a SHA-256 digest, or a bcrypt or argon2id hash),
// and what bounds the cost of the slow hashes.

// secretCacheTTL bounds how long a slow-hash verification is remembered.
const secretCacheTTL = 10 * time.Minute

// checkSecret compares a presented secret with the client's, in constant
// time for the fast hashes.
func (c *Client) checkSecret(presented string) bool {
	if c.secret == nil {
		return false
	}
	return c.secret.check(presented)
}

// secretChecker verifies a presented client secret.
type secretChecker interface {
	check(presented string) bool
}

// digestChecker compares SHA-256 digests in constant time.
type digestChecker struct{ digest [32]byte }

func newDigestChecker(d [32]byte) *digestChecker { return &digestChecker{digest: d} }

func (d *digestChecker) check(presented string) bool {
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], d.digest[:]) == 1
}

// slowHashChecker verifies bcrypt or argon2id hashes and remembers the
// digest of the last secret that matched for a while, so the token endpoint
// pays for the slow hash once per secret, not once per request. Only a
// successful comparison is remembered; a wrong secret always pays in full.
// Checks of the same secret that arrive while one is running wait for its
// answer instead of running their own: when the memory expires under load,
// every concurrent request of the client would otherwise start a slow hash
// at once, and all but a few would time out waiting for a slot (the load
// script saw a client's 32 connections get 88 failures in 6 s this way).
type slowHashChecker struct {
	hash     []byte
	comparer caddyauth.Comparer

	mu       sync.Mutex
	good     [32]byte
	expiry   time.Time
	inFlight map[[32]byte]*secretCheck
}

// secretCheck is one running comparison of a presented secret, which
// checks of the same secret (the same SHA-256 digest) wait for.
type secretCheck struct {
	done chan struct{}
	ok   bool
}

func (s *slowHashChecker) check(presented string) bool {
	digest := sha256.Sum256([]byte(presented))
	s.mu.Lock()
	if time.Now().Before(s.expiry) && subtle.ConstantTimeCompare(digest[:], s.good[:]) == 1 {
		s.mu.Unlock()
		return true
	}
	if running, ok := s.inFlight[digest]; ok {
		s.mu.Unlock()
		// Bounded: the running check waits at most slowHashWait for a
		// slot, then takes one hash's time.
		<-running.done
		return running.ok
	}
	c := &secretCheck{done: make(chan struct{})}
	if s.inFlight == nil {
		s.inFlight = make(map[[32]byte]*secretCheck)
	}
	s.inFlight[digest] = c
	s.mu.Unlock()

	c.ok = s.compare(presented)
	s.mu.Lock()
	delete(s.inFlight, digest)
	if c.ok {
		s.good, s.expiry = digest, time.Now().Add(secretCacheTTL)
	}
	s.mu.Unlock()
	close(c.done)
	return c.ok
}

// compare runs the slow hash in one of the bounded slots.
func (s *slowHashChecker) compare(presented string) bool {
	if !acquireSlowHashSlot() {
		return false
	}
	defer releaseSlowHashSlot()
	ok, err := s.comparer.Compare(s.hash, []byte(presented))
	return err == nil && ok
}

// slowHashSlots bounds how many bcrypt or argon2id comparisons run at once.
// Client ids are not secret, so anyone can send wrong secrets for a client
// with a slow hash; unbounded, a few hundred concurrent guesses would take
// every core (bcrypt) or gigabytes (argon2id at 46 MiB each). A request
// that finds no slot within slowHashWait fails authentication; secrets
// already verified are served from the cache without a slot.
var slowHashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

const slowHashWait = time.Second

func acquireSlowHashSlot() bool {
	select {
	case slowHashSlots <- struct{}{}:
		slowHashSlotMetrics.Inc(slotFree)
		return true
	default:
	}
	t := time.NewTimer(slowHashWait)
	defer t.Stop()
	select {
	case slowHashSlots <- struct{}{}:
		slowHashSlotMetrics.Inc(slotWaited)
		return true
	case <-t.C:
		slowHashSlotMetrics.Inc(slotRefused)
		return false
	}
}

func releaseSlowHashSlot() { <-slowHashSlots }

// knownSlowHashSlots are held back for sign-ins from a known device
// (device.go): a flood of wrong passwords or client secrets, which can
// only take slowHashSlots, leaves them free for people who signed in from
// that browser before. Half as many as the general slots, at least one.
var knownSlowHashSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// knownSlowHashWait is how long a sign-in from a known device waits for a
// slot: longer than slowHashWait, since only people who signed in before
// wait here, one sign-in per device cookie at a time, and a busy machine
// may take a while over each hash.
const knownSlowHashWait = 5 * time.Second

// acquireKnownSlowHashSlot is acquireSlowHashSlot for a sign-in from a
// known device: a reserved slot if one is free, else a general one, else
// whichever comes free first within knownSlowHashWait. It returns the
// function that gives the slot back.
func acquireKnownSlowHashSlot() (release func(), ok bool) {
	select {
	case knownSlowHashSlots <- struct{}{}:
		return releaseKnownSlowHashSlot, true
	default:
	}
	select {
	case slowHashSlots <- struct{}{}:
		return releaseSlowHashSlot, true
	default:
	}
	t := time.NewTimer(knownSlowHashWait)
	defer t.Stop()
	select {
	case knownSlowHashSlots <- struct{}{}:
		return releaseKnownSlowHashSlot, true
	case slowHashSlots <- struct{}{}:
		return releaseSlowHashSlot, true
	case <-t.C:
		return nil, false
	}
}

func releaseKnownSlowHashSlot() { <-knownSlowHashSlots }

// parseSecretHash reads `sha256:<64 hex>`, a bcrypt hash ($2a$, $2b$, $2y$)
// or an argon2id hash ($argon2id$), each optionally base64-encoded as older
// `caddy hash-password` versions printed them.
func parseSecretHash(h string) (secretChecker, error) {
	if chk, err := parseSecretHashText(h); err == nil || strings.HasPrefix(h, "sha256:") || strings.HasPrefix(h, "$") {
		return chk, err
	}
	if dec, err := base64.StdEncoding.DecodeString(h); err == nil && len(dec) > 0 && dec[0] == '$' {
		return parseSecretHashText(string(dec))
	}
	return nil, errors.New("not a recognized hash: use sha256:<hex> (`caddy oauth-secret`) or a bcrypt/argon2id hash (`caddy hash-password`)")
}

func parseSecretHashText(h string) (secretChecker, error) {
	switch {
	case strings.HasPrefix(h, "sha256:"):
		raw, err := hex.DecodeString(strings.TrimPrefix(h, "sha256:"))
		if err != nil || len(raw) != sha256.Size {
			return nil, errors.New("sha256: needs 64 hex digits")
		}
		return newDigestChecker([32]byte(raw)), nil
	case strings.HasPrefix(h, "$"):
		ph, err := parseSlowHash(h)
		if err != nil {
			return nil, err
		}
		return &slowHashChecker{hash: ph.hash, comparer: ph.comparer}, nil
	}
	return nil, errors.New("not a recognized hash: use sha256:<hex> (`caddy oauth-secret`) or a bcrypt/argon2id hash (`caddy hash-password`)")
}

// demoSecretHashes are the secret hashes of the demo clients in
// Caddyfile.example, whose secrets the README publishes. They are refused
// unless the issuer is a loopback address, so a copied example cannot serve
// tokens to anyone who read the README. A test keeps this list in step
// with the example.
var demoSecretHashes = []string{
	"sha256:6fdd8e6008f83508d05d0878666ffb26f70af13148bf21dff63f2c918bcb190b", // reports-demo-secret-not-for-production
	"sha256:09407dba61308017ab8e85a26126f7477c2d796eafe986a30001e0e33ae1c4f1", // provisioning-demo-secret-not-for-production
	"sha256:9b7b7a49182930707a9ba543c0ea8c417a01a04b44c8ac256cf0a58771f4732a", // partner-demo-secret-not-for-production
	"sha256:b8d5967ef8785ed5c840febc4bc51bbc9d8ac143d06d6941fd52e02485b72375", // notes-web-demo-secret-not-for-production
	"sha256:e41bb21b2a2d0936c67b97002f8534510285dadf0cdf8b4d47a55569655400db", // oauth2-proxy-demo-secret-not-for-production
	"sha256:647127389fa41cf03185d1f0bc986219daf42543d1dda27690ed5334a4529657", // ledger-demo-secret-not-for-production
}
