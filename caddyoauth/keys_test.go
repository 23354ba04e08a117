package caddyoauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"github.com/caddyapigw/gateway/internal/oauthstore"
)

// writeKeyPEM writes a new PKCS #8 private key for alg and returns its path.
func writeKeyPEM(t testing.TB, alg string) string {
	t.Helper()
	k, err := oauthjwt.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.MarshalPrivateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), alg+".pem")
	mustWrite(t, p, string(b))
	return p
}

func mustWrite(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// storeOn is the default store the app opens on storage.
func storeOn(storage certmagic.Storage) Store {
	return NewCaddyStore(storage, storePrefix, zap.NewNop())
}

// readStored reads the keyring the app keeps in the store.
func readStored(t testing.TB, storage certmagic.Storage, issuer string) oauthstore.StoredKeyring {
	t.Helper()
	data, err := storeOn(storage).Get(context.Background(), oauthstore.KeyringKey(issuer))
	if err != nil {
		t.Fatalf("keyring not in storage: %v", err)
	}
	var sk oauthstore.StoredKeyring
	if err := json.Unmarshal(data, &sk); err != nil {
		t.Fatalf("stored keyring is not JSON: %v", err)
	}
	return sk
}

// issue gets a token for svc from app through the token endpoint.
func issue(t testing.TB, app *App) string {
	t.Helper()
	s := newServer(t, app, "")
	return decodeTokenResponse(t, basicToken(t, s, svcID, svcSecret, ccForm())).AccessToken
}

// jwksKids fetches the JWKS through the handler and returns kid → alg.
func jwksKids(t testing.TB, app *App) map[string]string {
	t.Helper()
	s := newServer(t, app, "")
	rec, _ := serve(t, s, httptest.NewRequest(http.MethodGet, "/oauth2/jwks", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("jwks status %d", rec.Code)
	}
	var set struct {
		Keys []struct {
			Kid, Alg string
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range set.Keys {
		out[k.Kid] = k.Alg
	}
	return out
}

// TestKeyringGeneratedAndStored: without a PEM file, a key is generated on
// first provision and kept in Caddy storage; its kid is its RFC 7638
// thumbprint.
func TestKeyringGeneratedAndStored(t *testing.T) {
	storage := newStorage(t)
	if _, err := storeOn(storage).Get(context.Background(), oauthstore.KeyringKey(testIssuer)); err == nil {
		t.Fatal("keyring exists before provision")
	}
	app := provisionApp(t, baseConfig(), storage)
	active := app.Keyring().Active()

	sk := readStored(t, storage, testIssuer)
	if sk.Active != active.ID || len(sk.Keys) != 1 || sk.Keys[0].ID != active.ID || sk.Keys[0].Algorithm != "ES256" {
		t.Fatalf("stored keyring %+v does not hold the active key %s", sk, active.ID)
	}
	if !sk.Keys[0].RetireAt.IsZero() {
		t.Errorf("the active key has a retire_at: %v", sk.Keys[0].RetireAt)
	}
	k, err := oauthjwt.ParsePrivateKeyPEM("ES256", []byte(sk.Keys[0].PrivateKey))
	if err != nil {
		t.Fatalf("stored private key does not parse: %v", err)
	}
	tp, err := oauthjwt.Thumbprint(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	if tp != active.ID {
		t.Errorf("kid %s is not the RFC 7638 thumbprint %s", active.ID, tp)
	}

	// Another issuer on the same storage gets its own keyring.
	other := baseConfig()
	other.Issuer = "https://other.example"
	if provisionApp(t, other, storage).Keyring().Active().ID == active.ID {
		t.Error("two issuers share one signing key")
	}
}

// TestKeyringSurvivesRestart: a second App on the same storage (a restart,
// a reload, or another instance sharing storage) loads the same key, so
// tokens issued before keep verifying.
func TestKeyringSurvivesRestart(t *testing.T) {
	storage := newStorage(t)
	first := provisionApp(t, baseConfig(), storage)
	tok := issue(t, first)

	second := provisionApp(t, baseConfig(), storage)
	if got, want := second.Keyring().Active().ID, first.Keyring().Active().ID; got != want {
		t.Fatalf("kid after restart = %s, want %s", got, want)
	}
	if _, err := second.Verifier().Verify(tok); err != nil {
		t.Fatalf("token issued before the restart refused: %v", err)
	}
	if _, err := first.Verifier().Verify(issue(t, second)); err != nil {
		t.Fatalf("token issued after the restart refused by the first instance: %v", err)
	}
	if len(readStored(t, storage, testIssuer).Keys) != 1 {
		t.Error("restart added a key to the keyring")
	}

	// Fresh storage: a new key, and the old token is not accepted.
	fresh := newApp(t, nil)
	if fresh.Keyring().Active().ID == first.Keyring().Active().ID {
		t.Fatal("fresh storage produced the same key")
	}
	if _, err := fresh.Verifier().Verify(tok); err == nil {
		t.Fatal("token verified by an app with another keyring")
	}
}

// TestKeyringConcurrentProvision: instances starting together on shared
// storage agree on one key (the storage lock).
func TestKeyringConcurrentProvision(t *testing.T) {
	storage := newStorage(t)
	const n = 4
	apps := make([]*App, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			apps[i] = baseConfig()
			errs[i] = apps[i].provision(context.Background(), storage, zap.NewNop())
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if apps[i].Keyring().Active().ID != apps[0].Keyring().Active().ID {
			t.Fatalf("instance %d signs with %s, instance 0 with %s", i, apps[i].Keyring().Active().ID, apps[0].Keyring().Active().ID)
		}
	}
	if got := len(readStored(t, storage, testIssuer).Keys); got != 1 {
		t.Fatalf("stored keyring has %d keys, want 1", got)
	}
}

// TestKeyringAlgorithmChange: a new signing_key algorithm gets a new active
// key; the previous key stays for verification (and in the JWKS) until the
// tokens it signed have expired, so rotation does not invalidate live
// tokens (DESIGN.md "Tokens").
func TestKeyringAlgorithmChange(t *testing.T) {
	storage := newStorage(t)
	es := provisionApp(t, baseConfig(), storage)
	oldKid := es.Keyring().Active().ID
	oldTok := issue(t, es)

	cfg := baseConfig()
	cfg.SigningKey = &SigningKeyConfig{Algorithm: "RS256"}
	rotationStart := time.Now()
	rs := provisionApp(t, cfg, storage)
	active := rs.Keyring().Active()
	if active.Alg != "RS256" || active.ID == oldKid {
		t.Fatalf("active key after change = %s %s, want a new RS256 key", active.Alg, active.ID)
	}
	if k, ok := rs.Keyring().Lookup(oldKid); !ok || k.Alg != "ES256" {
		t.Fatalf("previous ES256 key %s dropped from the keyring", oldKid)
	}
	if got := jwksKids(t, rs); got[oldKid] != "ES256" || got[active.ID] != "RS256" || len(got) != 2 {
		t.Fatalf("JWKS = %v, want the old ES256 and the new RS256 key", got)
	}
	if _, err := rs.Verifier().Verify(oldTok); err != nil {
		t.Fatalf("token signed before the change refused: %v", err)
	}
	newTok := issue(t, rs)
	if hdr, _ := jwtSegments(t, newTok); hdr["alg"] != "RS256" || hdr["kid"] != active.ID {
		t.Fatalf("new token header %v, want RS256 with kid %s", hdr, active.ID)
	}
	if _, err := rs.Verifier().Verify(newTok); err != nil {
		t.Fatal(err)
	}

	// The old key may go once the last token it signed has expired: not
	// before rotation + the longest access-token lifetime + the leeway the
	// verifier allows on exp.
	sk := readStored(t, storage, testIssuer)
	if sk.Active != active.ID {
		t.Fatalf("stored active = %s, want %s", sk.Active, active.ID)
	}
	var old *oauthstore.StoredKey
	for i := range sk.Keys {
		if sk.Keys[i].ID == oldKid {
			old = &sk.Keys[i]
		}
	}
	if old == nil {
		t.Fatal("old key not stored")
	}
	earliest := rotationStart.Add(time.Hour + oauthjwt.DefaultLeeway).Truncate(time.Second)
	if old.RetireAt.Before(earliest) {
		t.Errorf("old key retires at %v, before its last token can expire (%v)", old.RetireAt, earliest)
	}
	// It is kept for the longest lifetime any configuration allows, since
	// the TTL may have been shortened in the same reload; not longer.
	if old.RetireAt.Before(rotationStart.Add(maxAccessTokenTTL).Truncate(time.Second)) {
		t.Errorf("old key retires at %v, before a token with the maximum lifetime could expire", old.RetireAt)
	}
	if old.RetireAt.After(time.Now().Add(maxAccessTokenTTL + maxLeeway + time.Minute)) {
		t.Errorf("old key retires at %v, long after any token could expire", old.RetireAt)
	}

	// Same algorithm again: no new key, the old one still there.
	again := provisionApp(t, cfg, storage)
	if again.Keyring().Active().ID != active.ID {
		t.Fatal("provisioning with an unchanged algorithm generated a key")
	}
	if _, ok := again.Keyring().Lookup(oldKid); !ok {
		t.Fatal("old key dropped before its retire time")
	}
	if _, err := again.Verifier().Verify(oldTok); err != nil {
		t.Fatalf("old token refused after a second restart: %v", err)
	}
}

// TestKeyringRetireCoversLongestClientTTL: the retire time accounts for a
// client whose tokens live longer than the app default.
func TestKeyringRetireCoversLongestClientTTL(t *testing.T) {
	storage := newStorage(t)
	cfg := baseConfig()
	cfg.Clients[1].AccessTokenTTL = caddy.Duration(24 * time.Hour)
	cfg.Leeway = caddy.Duration(time.Minute)
	es := provisionApp(t, cfg, storage)
	oldKid := es.Keyring().Active().ID

	cfg = baseConfig()
	cfg.Clients[1].AccessTokenTTL = caddy.Duration(24 * time.Hour)
	cfg.Leeway = caddy.Duration(time.Minute)
	cfg.SigningKey = &SigningKeyConfig{Algorithm: "EdDSA"}
	start := time.Now()
	provisionApp(t, cfg, storage)
	for _, k := range readStored(t, storage, testIssuer).Keys {
		if k.ID == oldKid {
			if earliest := start.Add(24*time.Hour + time.Minute).Truncate(time.Second); k.RetireAt.Before(earliest) {
				t.Fatalf("old key retires at %v, before a 24h token with 1m leeway expires (%v)", k.RetireAt, earliest)
			}
			return
		}
	}
	t.Fatal("old key not kept")
}

// TestKeyringRetiredKeyDropped: once its retire time has passed, an old key
// is no longer loaded, and tokens it signed no longer verify.
func TestKeyringRetiredKeyDropped(t *testing.T) {
	storage := newStorage(t)
	es := provisionApp(t, baseConfig(), storage)
	oldKid := es.Keyring().Active().ID
	oldTok := issue(t, es)

	cfg := baseConfig()
	cfg.SigningKey = &SigningKeyConfig{Algorithm: "EdDSA"}
	provisionApp(t, cfg, storage)

	sk := readStored(t, storage, testIssuer)
	for i := range sk.Keys {
		if sk.Keys[i].ID == oldKid {
			sk.Keys[i].RetireAt = time.Now().Add(-time.Minute)
		}
	}
	data, _ := json.Marshal(sk)
	if err := storeOn(storage).Put(context.Background(), oauthstore.KeyringKey(testIssuer), data, 0); err != nil {
		t.Fatal(err)
	}

	cfg = baseConfig()
	cfg.SigningKey = &SigningKeyConfig{Algorithm: "EdDSA"}
	later := provisionApp(t, cfg, storage)
	if _, ok := later.Keyring().Lookup(oldKid); ok {
		t.Fatal("retired key still loaded")
	}
	if _, err := later.Verifier().Verify(oldTok); err == nil {
		t.Fatal("token of a retired key verified")
	}
	if len(later.Keyring().Keys()) != 1 {
		t.Fatalf("keyring has %d keys, want 1", len(later.Keyring().Keys()))
	}
}

// TestKeyringCorruptRefused: a stored keyring that cannot be read makes
// provisioning fail with an error that says so, and is left as it is:
// replacing it would silently invalidate every live token.
func TestKeyringCorruptRefused(t *testing.T) {
	valid := func(t *testing.T) (certmagic.Storage, oauthstore.StoredKeyring) {
		storage := newStorage(t)
		provisionApp(t, baseConfig(), storage)
		return storage, readStored(t, storage, testIssuer)
	}
	tests := []struct {
		name    string
		corrupt func(t *testing.T) (certmagic.Storage, []byte)
		want    []string
	}{
		{"not JSON", func(t *testing.T) (certmagic.Storage, []byte) {
			return newStorage(t), []byte("{not json")
		}, []string{"signing_key", "corrupt", oauthstore.KeyringKey(testIssuer)}},
		{"truncated JSON", func(t *testing.T) (certmagic.Storage, []byte) {
			storage, sk := valid(t)
			data, _ := json.Marshal(sk)
			return storage, data[:len(data)/2]
		}, []string{"signing_key", "corrupt"}},
		{"private key PEM damaged", func(t *testing.T) (certmagic.Storage, []byte) {
			storage, sk := valid(t)
			sk.Keys[0].PrivateKey = strings.Replace(sk.Keys[0].PrivateKey, "PRIVATE KEY", "PUBLIC KEY", -1)
			data, _ := json.Marshal(sk)
			return storage, data
		}, []string{"signing_key", "stored key"}},
		{"kid does not match the key", func(t *testing.T) (certmagic.Storage, []byte) {
			storage, sk := valid(t)
			other, _ := oauthjwt.GenerateKey("ES256")
			pemBytes, _ := other.MarshalPrivateKeyPEM()
			sk.Keys[0].PrivateKey = string(pemBytes)
			data, _ := json.Marshal(sk)
			return storage, data
		}, []string{"signing_key", "kid does not match"}},
		{"algorithm does not fit the key", func(t *testing.T) (certmagic.Storage, []byte) {
			storage, sk := valid(t)
			sk.Keys[0].Algorithm = "RS256"
			data, _ := json.Marshal(sk)
			return storage, data
		}, []string{"signing_key", "stored key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storage, data := tt.corrupt(t)
			key := oauthstore.KeyringKey(testIssuer)
			if err := storeOn(storage).Put(context.Background(), key, data, 0); err != nil {
				t.Fatal(err)
			}
			err := baseConfig().provision(context.Background(), storage, zap.NewNop())
			if err == nil {
				t.Fatal("provision accepted a corrupt keyring")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			after, err := storeOn(storage).Get(context.Background(), key)
			if err != nil || string(after) != string(data) {
				t.Fatalf("corrupt keyring was replaced (err %v)", err)
			}
		})
	}
}

// TestKeyringFromPEMFile: signing_key <alg> <file> signs with that key, in
// each documented PEM encoding (PKCS #8, SEC 1, PKCS #1).
func TestKeyringFromPEMFile(t *testing.T) {
	type pemCase struct {
		name, alg string
		encode    func(k *oauthjwt.Key) []byte
	}
	pkcs8 := func(k *oauthjwt.Key) []byte {
		b, err := k.MarshalPrivateKeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []pemCase{
		{"ES256 PKCS #8", "ES256", pkcs8},
		{"ES384 PKCS #8", "ES384", pkcs8},
		{"RS256 PKCS #8", "RS256", pkcs8},
		{"PS256 PKCS #8", "PS256", pkcs8},
		{"EdDSA PKCS #8", "EdDSA", pkcs8},
		{"ES256 SEC 1", "ES256", func(k *oauthjwt.Key) []byte {
			der, err := x509.MarshalECPrivateKey(k.Signer.(*ecdsa.PrivateKey))
			if err != nil {
				t.Fatal(err)
			}
			return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		}},
		{"RS256 PKCS #1", "RS256", func(k *oauthjwt.Key) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.Signer.(*rsa.PrivateKey))})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := oauthjwt.GenerateKey(tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "key.pem")
			mustWrite(t, p, string(tt.encode(k)))

			cfg := baseConfig()
			cfg.SigningKey = &SigningKeyConfig{Algorithm: tt.alg, File: p}
			storage := newStorage(t)
			app := provisionApp(t, cfg, storage)
			if got := app.Keyring().Active(); got.ID != k.ID || got.Alg != tt.alg {
				t.Fatalf("active key %s %s, want the file's key %s %s", got.Alg, got.ID, tt.alg, k.ID)
			}
			tok := issue(t, app)
			hdr, _ := jwtSegments(t, tok)
			if hdr["alg"] != tt.alg || hdr["kid"] != k.ID {
				t.Fatalf("token header %v", hdr)
			}
			if _, err := app.Verifier().Verify(tok); err != nil {
				t.Fatal(err)
			}
			// The same file after a restart: same key, tokens still verify.
			cfg = baseConfig()
			cfg.SigningKey = &SigningKeyConfig{Algorithm: tt.alg, File: p}
			if _, err := provisionApp(t, cfg, storage).Verifier().Verify(tok); err != nil {
				t.Fatalf("token refused after restart with the same PEM file: %v", err)
			}
			if kids := jwksKids(t, app); !slices.Equal(mapKeys(kids), []string{k.ID}) {
				t.Fatalf("JWKS kids %v, want only %s", kids, k.ID)
			}
		})
	}
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestKeyringStorageKeyDistinct: issuers that a lossy storage-safe name
// would fold together still get separate keyrings.
func TestKeyringStorageKeyDistinct(t *testing.T) {
	issuers := []string{
		"https://as.example/tenant",
		"https://as.exampletenant",
		"https://as.example/Tenant",
		"https://AS.example/tenant",
	}
	seen := map[string]string{}
	for _, iss := range issuers {
		k := oauthstore.KeyringKey(iss)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s and %s share keyring %s", prev, iss, k)
		}
		seen[k] = iss
	}
}
