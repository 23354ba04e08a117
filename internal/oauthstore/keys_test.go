package oauthstore

import (
	"strconv"
	"strings"
	"testing"
)

// TestKeySchemaGolden pins the key schema (keys.go): the strings are a
// storage format, and a gateway upgraded in place finds its state only if
// they never change. The expected values are written out by hand from the
// schema's definition (digests are sha256sum outputs, SafeID forms the hex
// of the bytes); do not regenerate them from the code.
func TestKeySchemaGolden(t *testing.T) {
	const (
		sumABC   = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // sha256("abc")
		sumEmail = "5ff860bf1190596c7188ab851db691f0f3169c453936e9e1eba2f9a47f7a0018" // sha256("bob@example.com")
		sumJTI   = "5964da055ae31cf8eb7230e190a504899c6f60f07f9f1cd3cade9fbf226e8c28" // sha256("jti-1")
	)
	tests := []struct{ got, want string }{
		{codeKey("abc"), "codes/" + sumABC},
		{codeUsedKey("abc"), "codes-used/" + sumABC},
		{refreshKey("abc"), "refresh-tokens/" + sumABC},
		{refreshUsedKey("abc"), "refresh-used/" + sumABC},
		{familyKey("fam_1-X"), "refresh-families/fam_1-X"},
		{familyRevokedKey("fam_1-X"), "refresh-revoked/fam_1-X"},
		{familyAccessPrefix("fam_1-X"), "refresh-access/fam_1-X/"},
		{familyAccessKey("fam_1-X", "jti-1"), "refresh-access/fam_1-X/jti-1"},
		{familyAccessKey("fam_1-X", "a:b"), "refresh-access/fam_1-X/x-613a62"},
		{userFamiliesPrefix("alice", ""), "user-families/alice/"},
		{userFamiliesPrefix("alice", "app"), "user-families/alice/app/"},
		{userFamiliesPrefix("a@b", "c:d"), "user-families/x-614062/x-633a64/"},
		{userFamilyKey("alice", "app", "fam_1-X"), "user-families/alice/app/fam_1-X"},
		{userFamilyKey("a@b", "c:d", "fam_1-X"), "user-families/x-614062/x-633a64/fam_1-X"},
		{sessionKey("abc"), "sessions/" + sumABC},
		{consentsPrefix("alice"), "consents/alice/"},
		{consentsPrefix("a@b"), "consents/x-614062/"},
		{consentKey("alice", "app"), "consents/alice/app"},
		{consentKey("alice", "svc:1"), "consents/alice/x-7376633a31"},
		{userKey("alice"), "users/alice"},
		{userKey("Bob"), "users/bob"},
		{userKey("Bob@Example"), "users/x-626f62406578616d706c65"},
		{emailKey("bob@example.com"), "user-emails/" + sumEmail},
		{emailKey("Bob@Example.COM"), "user-emails/" + sumEmail},
		{clientsPrefix, "clients/"},
		{clientKey("app"), "clients/app"},
		{clientKey("svc~1"), "clients/x-7376637e31"},
		{clientRevocationKey("app"), "client-revocations/app"},
		{clientRevocationKey("svc:1"), "client-revocations/x-7376633a31"},
		{assertionKey("app", "jti-1"), "client-assertions/app/" + sumJTI},
		{assertionKey("svc:1", "jti-1"), "client-assertions/x-7376633a31/" + sumJTI},
		{tokenRevocationsPrefix, "revoked-tokens/"},
		{tokenRevocationKey("jti-1", 1700000000), "revoked-tokens/1700000000.jti-1"},
		{tokenRevocationKey("a:b", 1700000000), "revoked-tokens/1700000000.x-613a62"},
		{revocationStampKey, "revoked-tokens-version"},
		{initialAccessTokensPrefix, "registration-tokens/"},
		{initialAccessTokenKey("ab12"), "registration-tokens/ab12"},
		{registrationSlotKey("192.0.2.1", 3), "registration-slots/" + digest("192.0.2.1") + "/3"},
		// certmagic's Safe("https://auth.example.com") is
		// "https-auth.example.com"; 1ce18487e0b9bfef is the first 8 bytes
		// of sha256("https://auth.example.com").
		{issuerName("https://auth.example.com"), "https-auth.example.com-1ce18487e0b9bfef"},
		{KeyringKey("https://auth.example.com"), "issuers/https-auth.example.com-1ce18487e0b9bfef/keyring.json"},
		{keyringLockName("https://auth.example.com"), "keyring-https-auth.example.com-1ce18487e0b9bfef"},
		{lockKey("keyring-x"), "locks/keyring-x"},
		{markerKey, "store-id"},
		{KeyringKey(IDTokenKeyring("https://auth.example.com")), "issuers/https-auth.example.comid-token-rs256-2e949c095ae42eef/keyring.json"},
		// Safe keeps "@", which no segment may hold: it is dropped
		// (1957e3481365e4f4: sha256("https://auth.example.com/@acme")).
		{KeyringKey("https://auth.example.com/@acme"), "issuers/https-auth.example.comacme-1957e3481365e4f4/keyring.json"},
		// The empty id is no segment: it is "x-" (the hex of nothing).
		{clientKey(""), "clients/x-"},
		{tokenRevocationKey("", 1700000000), "revoked-tokens/1700000000.x-"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: key %q, want %q", i, tt.got, tt.want)
		}
	}
}

// trickyIDs are ids from outside (client_id, username, jti, e-mail) that
// the schema must map to distinct, valid key segments.
var trickyIDs = []string{
	"", ".", "..", "...", ":", "~", "x-", "x-3a", "X-3a", "x-x-3a", "-", "_",
	"a/b", "a//b", "/", "a b", " ", "é", "\x00", "\xff", "a\nb", "@", "a@b.c",
	"svc:reports~1", "x-782d", "x", "app", "App", strings.Repeat("z", 300),
}

// TestSafeID: safe ids stay readable; others, and safe ids that start with
// "x-" or are "." or "..", become x-<hex>, which no id left as it is can
// be, so two ids never share a key.
func TestSafeID(t *testing.T) {
	for _, tt := range []struct{ id, want string }{
		{"app", "app"},
		{"A-b_c.d9", "A-b_c.d9"},
		{"a.b", "a.b"},
		{"...", "..."},
		{"X-3a", "X-3a"}, // "x-" only, in lower case, is reserved
		{":", "x-3a"},
		{"~", "x-7e"},
		{"x-3a", "x-782d3361"},
		{"x-", "x-782d"},
		{".", "x-2e"},
		{"..", "x-2e2e"},
		{"a b", "x-612062"},
		{"a/b", "x-612f62"},
		{"é", "x-c3a9"},
		{"", "x-"},
	} {
		if got := SafeID(tt.id); got != tt.want {
			t.Errorf("SafeID(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	seen := map[string]string{}
	for _, id := range trickyIDs {
		s := SafeID(id)
		if prev, ok := seen[s]; ok {
			t.Errorf("SafeID(%q) = SafeID(%q) = %q", id, prev, s)
		}
		seen[s] = id
		if !ValidKey(s) || strings.Contains(s, "/") {
			t.Errorf("SafeID(%q) = %q is not a key segment", id, s)
		}
	}
}

// TestKeysValid: every key the schema makes from any outside id is one
// the stores accept (ValidKey), so an odd id is ErrNotFound, never a
// store error; and distinct ids make distinct keys.
func TestKeysValid(t *testing.T) {
	fam, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	makers := map[string]func(id string) string{
		"codeKey":             codeKey,
		"codeUsedKey":         codeUsedKey,
		"refreshKey":          refreshKey,
		"refreshUsedKey":      refreshUsedKey,
		"familyKey":           func(string) string { return familyKey(fam) },
		"userFamilyKey user":  func(id string) string { return userFamilyKey(id, "app", fam) },
		"userFamilyKey":       func(id string) string { return userFamilyKey("alice", id, fam) },
		"sessionKey":          sessionKey,
		"consentKey user":     func(id string) string { return consentKey(id, "app") },
		"consentKey":          func(id string) string { return consentKey("alice", id) },
		"userKey":             userKey,
		"emailKey":            emailKey,
		"clientKey":           clientKey,
		"clientRevocationKey": clientRevocationKey,
		"assertionKey client": func(id string) string { return assertionKey(id, "jti") },
		"assertionKey":        func(id string) string { return assertionKey("app", id) },
		"tokenRevocationKey":  func(id string) string { return tokenRevocationKey(id, 1700000000) },
		"KeyringKey":          KeyringKey,
		"keyring lock":        func(id string) string { return lockKey(keyringLockName(id)) },
	}
	issuers := []string{
		"https://auth.example.com", "https://AUTH.example.com", "https://auth.example.com/",
		"https://auth.example.com:8443/tenants/a", "https://auth.example.com/@acme",
		"https://auth.example.com/a..b", "http://localhost:9000", "https://[::1]/x",
		"https://auth.example.com/%2e%2e", "https://auth.example.com/~user/+x*",
	}
	for name, mk := range makers {
		ids := trickyIDs
		if strings.HasPrefix(name, "KeyringKey") || strings.HasPrefix(name, "keyring") {
			ids = append(issuers, trickyIDs...)
		}
		seen := map[string]string{}
		for _, id := range ids {
			k := mk(id)
			if !ValidKey(k) {
				t.Errorf("%s(%q) = %q is not a valid key", name, id, k)
			}
			if name == "familyKey" || name == "userKey" || name == "emailKey" {
				continue // one key for all, or folds case by design
			}
			if prev, ok := seen[k]; ok {
				t.Errorf("%s(%q) = %s(%q) = %q", name, id, name, prev, k)
			}
			seen[k] = id
		}
	}
}

func TestParseTokenRevocationKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"revoked-tokens/1700000000.abc", true},
		{"revoked-tokens/abc.def", false},
		{"revoked-tokens/1700000000.", false},
		{"revoked-tokens/1700000000", false},
		{"clients/x", false},
	} {
		if _, _, ok := parseTokenRevocationKey(tc.key); ok != tc.ok {
			t.Errorf("%q: ok=%v, want %v", tc.key, ok, tc.ok)
		}
	}
}

// TestTokenRevocationKeyRoundTrip: RFC 7009 §2.1, the revocation list is
// rebuilt from a listing alone: every key tokenRevocationKey makes parses
// back to the jti (in its SafeID form) and the expiry.
func TestTokenRevocationKeyRoundTrip(t *testing.T) {
	for _, jti := range append([]string{"a.b", "1.2", "-1"}, trickyIDs...) {
		for _, exp := range []int64{0, 1, 1700000000, -5, 1 << 62} {
			checkTokenRevocationRoundTrip(t, jti, exp)
		}
	}
}

func checkTokenRevocationRoundTrip(t *testing.T, jti string, exp int64) {
	t.Helper()
	key := tokenRevocationKey(jti, exp)
	if !ValidKey(key) {
		t.Errorf("tokenRevocationKey(%q, %d) = %q is not a valid key", jti, exp, key)
	}
	got, gotExp, ok := parseTokenRevocationKey(key)
	if !ok || got != SafeID(jti) || gotExp != exp {
		t.Errorf("parse(tokenRevocationKey(%q, %d) = %q) = %q, %d, %v; want %q, %d, true", jti, exp, key, got, gotExp, ok, SafeID(jti), exp)
	}
}

// FuzzParseTokenRevocationKey: parseTokenRevocationKey reads keys listed
// from a shared store, which anything may have written: it never panics,
// accepts only what it can read back, and round-trips what
// tokenRevocationKey makes.
func FuzzParseTokenRevocationKey(f *testing.F) {
	f.Add("revoked-tokens/1700000000.abc", "abc", int64(1700000000))
	f.Add("revoked-tokens/.x", "", int64(0))
	f.Add("revoked-tokens/-1.x-", "x-", int64(-1))
	f.Add("revoked-tokens/99999999999999999999.a", "a.b", int64(1<<62))
	f.Add("clients/x", ":", int64(5))
	f.Fuzz(func(t *testing.T, key, jti string, exp int64) {
		if got, n, ok := parseTokenRevocationKey(key); ok {
			if got == "" || !strings.HasPrefix(key, tokenRevocationsPrefix) || !strings.HasSuffix(key, "."+got) {
				t.Errorf("parse(%q) = %q, %d accepted a key it cannot have read", key, got, n)
			}
			if want, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(key, tokenRevocationsPrefix), "."+got), 10, 64); err != nil || want != n {
				t.Errorf("parse(%q) expiry %d, want %d (%v)", key, n, want, err)
			}
		}
		checkTokenRevocationRoundTrip(t, jti, exp)
	})
}

// FuzzSafeID: distinct ids never share a segment, and every segment is
// one the stores accept.
func FuzzSafeID(f *testing.F) {
	for i, id := range trickyIDs {
		f.Add(id, trickyIDs[(i+1)%len(trickyIDs)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, sb := SafeID(a), SafeID(b)
		if a != b && sa == sb {
			t.Errorf("SafeID(%q) = SafeID(%q) = %q", a, b, sa)
		}
		if !ValidKey(sa) || strings.Contains(sa, "/") {
			t.Errorf("SafeID(%q) = %q is not a key segment", a, sa)
		}
	})
}
