package oauthjwt

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestCacheKeyIsTheWholeText: the cache is keyed by a digest of the
// token's whole text, so a token differing from a cached one in any byte
// (the signature's last character, the header's first) is not served the
// cached claims: it goes through verification and is refused.
func TestCacheKeyIsTheWholeText(t *testing.T) {
	s := newTestSetup(t, ES256)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: s.kr, RequireAccessTokenType: true})
	tok := s.sign(t, goodClaims())
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if _, hit, err := v.VerifyCached(tok); !hit || err != nil {
		t.Fatalf("second use: hit %v, err %v", hit, err)
	}
	flip := func(i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, other := range []string{flip(len(tok) - 1), flip(0), tok + "A", tok[:len(tok)-1]} {
		if _, hit, err := v.VerifyCached(other); hit || err == nil {
			t.Errorf("a token one byte away: hit %v, err %v; want a refusal, not the cached claims", hit, err)
		}
	}
	var k1, k2 CacheKey = cacheKey(tok), cacheKey(flip(len(tok) - 1))
	if k1 == k2 || len(k1) != 32 {
		t.Error("cache keys of different tokens are equal, or not a SHA-256 digest")
	}
}

// TestCompactClaimsUnchanged: the cached claims, whose strings and lists
// are shared with other tokens' (interner) and whose payload keeps only
// what the fields do not hold (splitPayload), say exactly what the
// payload says, for scope strings, scope arrays, scp, duplicates, several
// audiences, a cnf and strings with JSON escapes.
func TestCompactClaimsUnchanged(t *testing.T) {
	s := newTestSetup(t, ES256)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: s.kr, RequireAccessTokenType: true})
	now := time.Now().Unix()
	base := map[string]any{
		"iss": testIssuer, "exp": now + 3600, "iat": now, "jti": "jti-é\"1",
		"sub": "person \\ \u2028 <b>", "client_id": "svc", "aud": "https://api.example",
	}
	for _, extra := range []map[string]any{
		{"scope": "a b c"},
		{"scope": []string{"a", "b"}, "scp": []string{"b", "c"}},
		{"scope": "a a b"},
		{"scope": "é ü", "aud": []string{"https://api.example", "https://api2.example"}},
		{"scope": "x", "cnf": map[string]any{"jkt": "abc", "x5t#S256": "def"}},
	} {
		c := map[string]any{}
		for k, val := range base {
			c[k] = val
		}
		for k, val := range extra {
			c[k] = val
		}
		tok := s.sign(t, c)
		got, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(c)
		var want Claims
		if err := json.Unmarshal(payload, &want); err != nil {
			t.Fatal(err)
		}
		if got.Issuer != want.Issuer || got.Subject != want.Subject || got.ID != want.ID || got.ClientID != want.ClientID ||
			!slices.Equal(got.Audience, want.Audience) || !slices.Equal(got.Scope, want.Scope) || !slices.Equal(got.Scp, want.Scp) ||
			got.ScopeText() != want.ScopeText() || !slices.Equal(got.Scopes(), want.Scopes()) {
			t.Errorf("%v: cached %+v, payload says %+v", extra, got, &want)
		}
		if (got.Cnf == nil) != (want.Cnf == nil) || (got.Cnf != nil && *got.Cnf != *want.Cnf) {
			t.Errorf("%v: cnf %+v, want %+v", extra, got.Cnf, want.Cnf)
		}
		if sub, _ := got.Claim("sub"); sub != want.Subject {
			t.Errorf("Claim(sub) = %q, want %q", sub, want.Subject)
		}
	}
}

// TestCachedClaimsSmall: what a cached token costs beyond its claims'
// struct. Two tokens of one client and person, the shape this gateway
// issues, keep no payload text (every member is in a field), share their
// client_id, sub, audiences and scope list, and box client_id and sub
// once between them; Claim still answers each member.
func TestCachedClaimsSmall(t *testing.T) {
	s := newTestSetup(t, ES256)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: s.kr, RequireAccessTokenType: true})
	now := time.Now().Unix()
	var got [2]*Claims
	for i := range got {
		tok := s.sign(t, map[string]any{
			"iss": testIssuer, "exp": now + 3600, "iat": now, "jti": fmt.Sprint("jti-", i),
			"sub": "alice", "client_id": "svc", "aud": []string{"https://api.example"}, "scope": "a b",
		})
		c, err := v.Verify(strings.Clone(tok))
		if err != nil {
			t.Fatal(err)
		}
		got[i] = c
	}
	a, b := got[0], got[1]
	if a.payload != "" || b.payload != "" {
		t.Errorf("payload kept: %q", a.payload)
	}
	if unsafe.StringData(a.ClientID) != unsafe.StringData(b.ClientID) || unsafe.StringData(a.Subject) != unsafe.StringData(b.Subject) ||
		&a.Audience[0] != &b.Audience[0] || &a.Scope[0] != &b.Scope[0] || &a.Scopes()[0] != &b.Scopes()[0] ||
		unsafe.StringData(a.ScopeText()) != unsafe.StringData(b.ScopeText()) {
		t.Error("two tokens of one client do not share its strings and lists")
	}
	ac, as := a.Boxed()
	bc, bs := b.Boxed()
	if ac != bc || as != bs || (*[2]uintptr)(unsafe.Pointer(&ac))[1] != (*[2]uintptr)(unsafe.Pointer(&bc))[1] {
		t.Error("client_id boxed twice")
	}
	for name, want := range map[string]string{"iss": testIssuer, "sub": "alice", "client_id": "svc", "jti": "jti-1",
		"aud": `["https://api.example"]`, "scope": "a b", "exp": fmt.Sprint(now + 3600), "iat": fmt.Sprint(now)} {
		if v, ok := b.Claim(name); !ok || v != want {
			t.Errorf("Claim(%q) = %q, %v; want %q", name, v, ok, want)
		}
	}
	if _, ok := b.Claim("nbf"); ok {
		t.Error("Claim(nbf) found a member the token does not have")
	}
}

// TestCacheFullShardSweep: a full shard drops its expired entries when an
// insert needs room, but walks the shard for them at most once per
// sweepInterval; in between, an insert into a full shard drops one entry
// and the size stays at the cap.
func TestCacheFullShardSweep(t *testing.T) {
	c := NewCache[int](cacheShards) // one entry per shard
	now := time.Unix(1_700_000_000, 0)
	// Fill every shard with an entry that expires a second from now.
	for i := 0; c.Len() < c.Cap(); i++ {
		c.Put(strconv.Itoa(i), i, now.Add(time.Second), now)
	}
	later := now.Add(2 * time.Second) // every entry has expired
	c.Put("new-1", 1, later.Add(time.Hour), later)
	s := c.shard(ptr(cacheKey("new-1")))
	if s.sweptAt != later.UnixNano() {
		t.Fatalf("the full shard did not sweep: sweptAt %d", s.sweptAt)
	}
	if _, ok := c.Get("new-1", later); !ok {
		t.Fatal("the new entry is not in the cache")
	}
	// Within the interval, the same shard is not swept again.
	for i := 0; ; i++ {
		tok := "again-" + strconv.Itoa(i)
		if c.shard(ptr(cacheKey(tok))) != s {
			continue
		}
		c.Put(tok, 2, later.Add(time.Hour), later.Add(time.Duration(sweepInterval/2)))
		if s.sweptAt != later.UnixNano() {
			t.Fatal("a second sweep within sweepInterval")
		}
		if _, ok := c.Get(tok, later); !ok {
			t.Fatal("the second new entry is not in the cache")
		}
		break
	}
	if c.Len() > c.Cap() {
		t.Fatalf("cache holds %d entries, cap %d", c.Len(), c.Cap())
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkCachePutFull: inserting into a full cache (the steady state of a
// token endpoint that remembers what it issues) costs about what an insert
// into a cache with room does, not a walk of the shard.
func BenchmarkCachePutFull(b *testing.B) {
	c := NewCache[int](defaultCacheSize)
	now := time.Unix(1_700_000_000, 0)
	tokens := make([]string, 2*defaultCacheSize)
	for i := range tokens {
		tokens[i] = "token-" + strconv.Itoa(i)
	}
	for _, tok := range tokens[:defaultCacheSize+cacheShards] {
		c.Put(tok, 1, now.Add(time.Hour), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Put(tokens[i%len(tokens)], i, now.Add(time.Hour), now)
	}
}

// TestCacheKeepsTokensInUse: tokens requests keep sending stay cached
// through a flood of tokens seen once (ten times the cache's size), as
// long as each is looked up again between a few inserts: eviction passes
// the least recently used of a few entries (sampled LRU). With plain
// random eviction, almost none of them would be left.
func TestCacheKeepsTokensInUse(t *testing.T) {
	c := NewCache[int](1024) // 64 a shard
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour)
	hot := make([]string, 256) // 16 a shard on average
	for i := range hot {
		hot[i] = "hot-" + strconv.Itoa(i)
		c.Put(hot[i], i, exp, now)
	}
	lookAll := func() {
		for _, h := range hot {
			c.Get(h, now)
		}
	}
	lookAll()
	for i := range 10 * c.Cap() {
		c.Put("once-"+strconv.Itoa(i), -1, exp, now)
		if i%64 == 63 { // four inserts a shard between uses
			lookAll()
		}
	}
	kept := 0
	for _, h := range hot {
		if _, ok := c.Get(h, now); ok {
			kept++
		}
	}
	if kept < len(hot)*95/100 {
		t.Fatalf("%d of %d tokens in use survived a flood of tokens seen once; want at least 95%%", kept, len(hot))
	}
	if c.Len() > c.Cap() {
		t.Fatalf("cache holds %d entries, cap %d", c.Len(), c.Cap())
	}
}

// TestCacheIndexConsistent: after inserts into full shards, replacements,
// expiries found by lookups and sweeps, every shard's entry list and map
// hold the same entries and each entry knows its place in the list (the
// list is what eviction samples).
func TestCacheIndexConsistent(t *testing.T) {
	c := NewCache[int](64) // 4 a shard
	now := time.Unix(1_700_000_000, 0)
	for i := range 2000 {
		tok := "t" + strconv.Itoa(i%300)
		exp := now.Add(time.Duration(i%7) * time.Second) // some expire soon
		c.Put(tok, i, exp, now)
		if i%3 == 0 {
			c.Get("t"+strconv.Itoa((i*7)%300), now)
		}
		now = now.Add(400 * time.Millisecond)
	}
	for i := range c.shards {
		s := &c.shards[i]
		if len(s.ents) != len(s.m) || len(s.m) > c.perShard {
			t.Fatalf("shard %d: %d entries listed, %d in the map, cap %d", i, len(s.ents), len(s.m), c.perShard)
		}
		for j, le := range s.ents {
			if e, ok := s.m[le.key]; !ok || e.idx != j || e != le {
				t.Fatalf("shard %d: key %d of the list is not where its entry says", i, j)
			}
		}
	}
}
