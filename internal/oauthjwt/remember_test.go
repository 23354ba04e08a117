package oauthjwt

import (
	"strconv"
	"testing"
	"time"
)

// TestRememberedTokensDoNotEvictUsedOnes: tokens the issuer remembers wait
// in their own area until their first use, so a flood of issued tokens
// that are never used (a client fetching one per job, a burst of token
// requests) cannot push the tokens requests are using out of the cache,
// and a remembered token's first use is a hit that moves it to the cache.
func TestRememberedTokensDoNotEvictUsedOnes(t *testing.T) {
	s := newTestSetup(t, ES256)
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Keys: s.kr, RequireAccessTokenType: true, CacheSize: 256})
	sign := func(jti string) (string, *Claims) {
		c := goodClaims()
		c.ID = jti
		return s.sign(t, c), c
	}
	// 64 tokens in use (4 a shard on average, far from its 16): verified
	// once, cached.
	var used []string
	for i := range 64 {
		tok, _ := sign("used-" + strconv.Itoa(i))
		if _, hit, err := v.VerifyCached(tok); hit || err != nil {
			t.Fatalf("first use: hit %v, err %v", hit, err)
		}
		used = append(used, tok)
	}
	// Ten times the cache's size issued and never used.
	for i := range 2560 {
		tok, c := sign("unused-" + strconv.Itoa(i))
		v.Remember(tok, c)
	}
	for i, tok := range used {
		if _, hit, err := v.VerifyCached(tok); !hit || err != nil {
			t.Fatalf("used token %d after the flood: hit %v, err %v; want a cache hit", i, hit, err)
		}
	}
	// A token remembered just now: its first use is a hit, and it is then
	// in the cache proper, out of the issued area.
	tok, c := sign("fresh")
	v.Remember(tok, c)
	if _, hit, err := v.VerifyCached(tok); !hit || err != nil {
		t.Fatalf("remembered token's first use: hit %v, err %v", hit, err)
	}
	if _, ok := v.issued.Take(keyOf(tok), v.now()); ok {
		t.Error("a used token is still in the issued area")
	}
	if _, ok := v.cache.Get(tok, v.now()); !ok {
		t.Error("a used remembered token is not in the cache")
	}
	if got, want := v.issued.Cap(), v.cache.Cap()/4; got != want {
		t.Errorf("issued area of %d, want a quarter of %d", got, v.cache.Cap())
	}
}

// TestIssuedTokensOldestOut: the issued area drops its oldest token when
// full, so every one of the last capacity tokens issued is still held;
// a token taken leaves its slot stale, and overwriting that slot later
// drops nothing else; an expired token is not returned.
func TestIssuedTokensOldestOut(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour)
	it := newIssuedTokens(100)
	if _, ok := it.Take(keyOf("nothing"), now); ok || it.ring != nil || it.m != nil {
		t.Fatal("an area nothing was put in took memory or answered")
	}
	c := &Claims{}
	for i := range 250 {
		it.Put(keyOf("t"+strconv.Itoa(i)), c, exp)
	}
	if it.Len() != 100 {
		t.Fatalf("holds %d, want 100", it.Len())
	}
	for i := range 250 {
		_, ok := it.Take(keyOf("t"+strconv.Itoa(i)), now)
		if want := i >= 150; ok != want {
			t.Fatalf("token %d of 250 held: %v, want %v (the last 100 only)", i, ok, want)
		}
	}
	if it.Len() != 0 {
		t.Fatalf("holds %d after every token was taken", it.Len())
	}
	// Stale slots: put 100, take the first, put one more (overwrites
	// slot 0, whose token is gone): the other 99 are all still held.
	for i := range 100 {
		it.Put(keyOf("u"+strconv.Itoa(i)), c, exp)
	}
	it.Take(keyOf("u0"), now)
	it.Put(keyOf("v"), c, exp)
	if it.Len() != 100 {
		t.Fatalf("holds %d, want 100 (99 + 1)", it.Len())
	}
	if _, ok := it.Take(keyOf("u1"), now); !ok {
		t.Fatal("the oldest token still held was dropped for a slot that was free")
	}
	it.Put(keyOf("late"), c, now.Add(time.Second))
	if _, ok := it.Take(keyOf("late"), now.Add(2*time.Second)); ok {
		t.Fatal("an expired token was returned")
	}
}

// keyOf is a token's cache key, for the issued area's methods.
func keyOf(token string) *CacheKey {
	k := cacheKey(token)
	return &k
}
