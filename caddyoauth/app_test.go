package caddyoauth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// TestIssuerValidation applies RFC 8414 §2: the issuer is an https URL
// with no query or fragment; http is tolerated for loopback hosts only.
func TestIssuerValidation(t *testing.T) {
	tests := []struct {
		issuer string
		ok     bool
	}{
		{"https://as.example", true},
		{"https://as.example/", true},
		{"https://as.example:8443", true},
		{"https://as.example/tenant", true},
		{"http://localhost", true},
		{"http://localhost:8080", true},
		{"http://127.0.0.1:9000", true},
		{"http://127.0.0.2", true},
		{"http://[::1]:8080", true},
		{"http://app.localhost", true}, // RFC 6761 §6.3: .localhost is loopback

		{"", false},
		{"as.example", false},                  // relative
		{"/oauth", false},                      // relative
		{"//as.example", false},                // scheme-relative
		{"https:/as.example", false},           // no host
		{"http://as.example", false},           // http, not loopback
		{"http://10.0.0.1", false},             // http, private but not loopback
		{"http://localhost.as.example", false}, // not under .localhost
		{"http://127.0.0.1.nip.io", false},     // a name, not the loopback address
		{"ftp://as.example", false},            // not https
		{"https://as.example?tenant=a", false}, // query (§2)
		{"https://as.example/?", false},        // empty query (§2)
		{"https://as.example#frag", false},     // fragment (§2)
		{"https://as.example/#", false},        // empty fragment (§2)
		{"https://user:pw@as.example", false},  // user info
		{"https://as.example/%zz", false},      // unparsable
		{"http://localhost/x?y", false},        // query, even on localhost
		{"https://as example", false},          // space in host
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			a := baseConfig()
			a.Issuer = tt.issuer
			err := a.provision(context.Background(), newStorage(t), zap.NewNop())
			if tt.ok {
				if err != nil {
					t.Fatalf("issuer %q refused: %v", tt.issuer, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("issuer %q accepted", tt.issuer)
			}
			if !strings.HasPrefix(err.Error(), "issuer: ") {
				t.Fatalf("error %q does not name the issuer field", err)
			}
		})
	}
}

// TestProvisionRefusals: bad configuration is refused at provision time with
// a message that names the field (DESIGN.md "Errors").
func TestProvisionRefusals(t *testing.T) {
	ecPEM := writeKeyPEM(t, oauthjwt.ES256)
	edPEM := writeKeyPEM(t, oauthjwt.EdDSA)
	client := func(mut func(c *Client)) func(a *App) {
		return func(a *App) { mut(a.Clients[0]) }
	}
	tests := []struct {
		name   string
		mutate func(a *App)
		want   []string // substrings of the error
	}{
		{"unknown grant type (RFC 6749 §4)", client(func(c *Client) { c.GrantTypes = []string{"client_credentials", "password"} }), []string{`client "reports-service"`, "grant_types", `"password"`}},
		{"private_key_jwt without keys", client(func(c *Client) { c.SecretHash, c.AuthMethod = "", authPrivateKeyJWT }), []string{"private_key_jwt", "jwks"}},
		{"private_key_jwt with a secret", client(func(c *Client) { c.AuthMethod, c.JWKS = authPrivateKeyJWT, json.RawMessage(`{"keys":[]}`) }), []string{"no secret"}},
		{"private_key_jwt with a symmetric JWK (RFC 7517 §6.4)", client(func(c *Client) {
			c.SecretHash, c.AuthMethod, c.JWKS = "", authPrivateKeyJWT, json.RawMessage(`{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)
		}), []string{"jwks"}},
		{"client_secret_jwt with a hash (no HMAC key)", client(func(c *Client) { c.AuthMethod = authClientSecretJWT }), []string{"client_secret_jwt", "plain secret"}},
		{"client_secret_jwt with a short secret (RFC 7518 §3.2)", client(func(c *Client) { c.SecretHash, c.Secret, c.AuthMethod = "", "0123456789abcdefXYZ", authClientSecretJWT }), []string{"32"}},
		{"unknown auth method", client(func(c *Client) { c.AuthMethod = "tls_client_auth" }), []string{"token_endpoint_auth_method"}},
		{"jwks without private_key_jwt", client(func(c *Client) { c.JWKSURI = "https://keys.example/jwks" }), []string{"jwks", "private_key_jwt"}},
		{"jwt-bearer without keys (RFC 7523 §2.1)", client(func(c *Client) { c.GrantTypes, c.AssertionSubjects = []string{GrantJWTBearer}, []string{"*"} }), []string{"jwks"}},
		{"jwt-bearer without subjects", client(func(c *Client) {
			c.GrantTypes, c.JWKSURI = []string{GrantJWTBearer}, "https://keys.example/jwks"
		}), []string{"assertion_subjects"}},
		{"assertion settings without the grant", client(func(c *Client) { c.AssertionSubjects = []string{"*"} }), []string{"assertion_subjects"}},
		{"refresh_token_reuse_grace over 1m (RFC 9700 §4.14.2)", func(a *App) { a.RefreshTokenReuseGrace = durationPtr(61 * time.Second) }, []string{"refresh_token_reuse_grace", "1m1s"}},
		{"refresh_token_reuse_grace negative", func(a *App) { a.RefreshTokenReuseGrace = durationPtr(-time.Second) }, []string{"refresh_token_reuse_grace"}},
		{"implicit grant refused (RFC 9700 §2.1.2)", client(func(c *Client) { c.GrantTypes = []string{"implicit"} }), []string{"grant_types", "implicit", "RFC 9700"}},
		{"password grant refused (RFC 9700 §2.4)", client(func(c *Client) { c.GrantTypes = []string{"password"} }), []string{"grant_types", "password", "RFC 9700"}},
		{"grant listed twice", client(func(c *Client) { c.GrantTypes = []string{"client_credentials", "client_credentials"} }), []string{"grant_types", "twice"}},
		{"authorization_code without redirect URIs (RFC 6749 §3.1.2.2)", client(func(c *Client) { c.GrantTypes = []string{"authorization_code"} }), []string{"redirect_uris"}},
		{"redirect URIs without authorization_code", client(func(c *Client) {
			c.RedirectURIs = []string{"https://app.example/cb"}
			c.GrantTypes = []string{"client_credentials"}
		}), []string{"redirect_uris", "authorization_code"}},
		{"refresh_token without authorization_code", client(func(c *Client) { c.GrantTypes = []string{"client_credentials", "refresh_token"} }), []string{"grant_types", "refresh_token"}},
		{"public client with client_credentials (RFC 6749 §4.4)", client(func(c *Client) {
			c.Public, c.SecretHash, c.GrantTypes = true, "", []string{"client_credentials"}
		}), []string{"public", "client_credentials"}},
		{"redirect URI with fragment (RFC 6749 §3.1.2)", client(func(c *Client) { c.RedirectURIs = []string{"https://app.example/cb#x"} }), []string{"redirect_uris", "fragment"}},
		{"relative redirect URI (RFC 6749 §3.1.2)", client(func(c *Client) { c.RedirectURIs = []string{"/cb"} }), []string{"redirect_uris", "absolute"}},
		{"http redirect URI off loopback (RFC 9700 §2.6)", client(func(c *Client) { c.RedirectURIs = []string{"http://app.example/cb"} }), []string{"redirect_uris", "loopback"}},
		{"wildcard redirect URI (RFC 9700 §4.1.3)", client(func(c *Client) { c.RedirectURIs = []string{"https://*.example/cb"} }), []string{"redirect_uris", "exactly"}},
		{"private-use scheme without a dot (RFC 8252 §7.1)", client(func(c *Client) { c.RedirectURIs = []string{"myapp:/cb"} }), []string{"redirect_uris", "reverse domain"}},
		{"redirect URI whose query has code (RFC 6749 §4.1.2)", client(func(c *Client) { c.RedirectURIs = []string{"https://app.example/cb?code=1"} }), []string{"redirect_uris", "code"}},
		{"redirect URI scheme in upper case (RFC 3986 §3.1)", client(func(c *Client) { c.RedirectURIs = []string{"HTTP://127.0.0.1/cb"} }), []string{"redirect_uris", "lower case"}},
		{"redirect URI scheme in mixed case (RFC 3986 §3.1)", client(func(c *Client) { c.RedirectURIs = []string{"Com.Example.App:/cb"} }), []string{"redirect_uris", "lower case"}},
		{"redirect URI twice", client(func(c *Client) { c.RedirectURIs = []string{"https://app.example/cb", "https://app.example/cb"} }), []string{"redirect_uris", "twice"}},
		{"confidential client without secret (RFC 6749 §2.1)", client(func(c *Client) { c.SecretHash = "" }), []string{`client "reports-service"`, "secret_hash"}},
		{"public client with secret_hash (RFC 6749 §2.1)", client(func(c *Client) { c.Public = true }), []string{"public"}},
		{"public client with secret (RFC 6749 §2.1)", client(func(c *Client) { c.Public, c.SecretHash, c.Secret = true, "", "0123456789abcdefXYZ" }), []string{"public"}},
		{"public client without redirect URIs", client(func(c *Client) { c.Public, c.SecretHash = true, "" }), []string{"redirect_uris"}},
		{"duplicate client_id (RFC 6749 §2.2 unique)", func(a *App) { a.Clients[1].ID = a.Clients[0].ID }, []string{`client "reports-service"`, "client_id", "twice"}},
		{"bad client_id characters", client(func(c *Client) { c.ID = "has space" }), []string{"client_id"}},
		{"empty client_id", client(func(c *Client) { c.ID = "" }), []string{"client_id"}},
		{"client_id too long", client(func(c *Client) { c.ID = strings.Repeat("a", 129) }), []string{"client_id"}},
		{"nil client", func(a *App) { a.Clients = append(a.Clients, nil) }, []string{"clients[2]"}},
		{"bad sha256 hex", client(func(c *Client) { c.SecretHash = "sha256:xyz" }), []string{"secret_hash", "sha256"}},
		{"sha256 of wrong length", client(func(c *Client) { c.SecretHash = "sha256:" + strings.Repeat("ab", 31) }), []string{"secret_hash", "sha256"}},
		{"bad bcrypt", client(func(c *Client) { c.SecretHash = "$2a$10$tooshort" }), []string{"secret_hash", "bcrypt"}},
		{"bad argon2id", client(func(c *Client) { c.SecretHash = "$argon2id$v=19$nonsense" }), []string{"secret_hash", "argon2id"}},
		{"unrecognized hash", client(func(c *Client) { c.SecretHash = "md5:abc" }), []string{"secret_hash"}},
		{"secret_hash and secret both", client(func(c *Client) { c.Secret = "0123456789abcdefXYZ" }), []string{"secret_hash and secret"}},
		{"short plain secret", client(func(c *Client) { c.SecretHash, c.Secret = "", "short" }), []string{"secret", "16"}},
		{"15-character secret", client(func(c *Client) { c.SecretHash, c.Secret = "", strings.Repeat("x", 15) }), []string{"secret", "16"}},
		{"secret from an unset env var", client(func(c *Client) { c.SecretHash, c.Secret = "", "{env.CADDYOAUTH_TEST_SURELY_UNSET}" }), []string{"secret", "{env.CADDYOAUTH_TEST_SURELY_UNSET}", "empty"}},
		{"secret from a short env var", client(func(c *Client) { c.SecretHash, c.Secret = "", "{env.CADDYOAUTH_TEST_SHORT}" }), []string{"secret", "16"}},
		{"no scopes", client(func(c *Client) { c.Scopes = nil }), []string{"scopes"}},
		{"invalid scope token: space (RFC 6749 §3.3)", client(func(c *Client) { c.Scopes = []string{"user read"} }), []string{"scopes", `"user read"`}},
		{"invalid scope token: quote (RFC 6749 §3.3)", client(func(c *Client) { c.Scopes = []string{`a"b`} }), []string{"scopes"}},
		{"invalid scope token: empty (RFC 6749 §3.3)", client(func(c *Client) { c.Scopes = []string{"a", ""} }), []string{"scopes"}},
		{"bad metadata key", client(func(c *Client) { c.Metadata = map[string]string{"bad key": "x"} }), []string{"metadata", "bad key"}},
		{"metadata key with braces", client(func(c *Client) { c.Metadata = map[string]string{"a}b": "x"} }), []string{"metadata"}},
		{"client access_token_ttl too short", client(func(c *Client) { c.AccessTokenTTL = caddy.Duration(30 * time.Second) }), []string{`client "reports-service"`, "access_token_ttl"}},
		{"client access_token_ttl too long", client(func(c *Client) { c.AccessTokenTTL = caddy.Duration(25 * time.Hour) }), []string{"access_token_ttl"}},
		{"access_token_ttl too short", func(a *App) { a.AccessTokenTTL = caddy.Duration(59 * time.Second) }, []string{"access_token_ttl"}},
		{"access_token_ttl too long", func(a *App) { a.AccessTokenTTL = caddy.Duration(24*time.Hour + time.Second) }, []string{"access_token_ttl"}},
		{"access_token_ttl negative", func(a *App) { a.AccessTokenTTL = caddy.Duration(-time.Hour) }, []string{"access_token_ttl"}},
		{"leeway negative", func(a *App) { a.Leeway = caddy.Duration(-time.Second) }, []string{"leeway"}},
		{"leeway too long", func(a *App) { a.Leeway = caddy.Duration(6 * time.Minute) }, []string{"leeway"}},
		{"unknown signing algorithm", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "ES512"} }, []string{"signing_key", "ES512"}},
		{"symmetric algorithm refused", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "HS256"} }, []string{"signing_key", "HS256"}},
		{"alg none refused (RFC 8725 §3.1)", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "none"} }, []string{"signing_key"}},
		{"EC PEM for RS256", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "RS256", File: ecPEM} }, []string{"signing_key", ecPEM, "RS256"}},
		{"P-256 PEM for ES384", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "ES384", File: ecPEM} }, []string{"signing_key", ecPEM, "ES384"}},
		{"Ed25519 PEM for ES256", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "ES256", File: edPEM} }, []string{"signing_key", edPEM, "ES256"}},
		{"PEM file missing", func(a *App) {
			a.SigningKey = &SigningKeyConfig{Algorithm: "ES256", File: filepath.Join(t.TempDir(), "nope.pem")}
		}, []string{"signing_key", "nope.pem"}},
		{"PEM file not PEM", func(a *App) {
			p := filepath.Join(t.TempDir(), "junk.pem")
			mustWrite(t, p, "not a key")
			a.SigningKey = &SigningKeyConfig{Algorithm: "ES256", File: p}
		}, []string{"signing_key", "junk.pem"}},
		{"PEM file with a public key", func(a *App) {
			p := filepath.Join(t.TempDir(), "pub.pem")
			mustWrite(t, p, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
			a.SigningKey = &SigningKeyConfig{Algorithm: "ES256", File: p}
		}, []string{"signing_key", "pub.pem"}},
	}
	t.Setenv("CADDYOAUTH_TEST_SHORT", "short")
	t.Setenv("CADDYOAUTH_TEST_SURELY_UNSET", "")
	os.Unsetenv("CADDYOAUTH_TEST_SURELY_UNSET") // t.Setenv restores it afterwards
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := baseConfig()
			tt.mutate(a)
			err := a.provision(context.Background(), newStorage(t), zap.NewNop())
			if err == nil {
				t.Fatal("provision accepted the configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestProvisionAccepts: the edges of the accepted ranges provision.
func TestProvisionAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(a *App)
	}{
		{"ttl 1m", func(a *App) { a.AccessTokenTTL = caddy.Duration(time.Minute) }},
		{"ttl 24h", func(a *App) { a.AccessTokenTTL = caddy.Duration(24 * time.Hour) }},
		{"client ttl 24h", func(a *App) { a.Clients[0].AccessTokenTTL = caddy.Duration(24 * time.Hour) }},
		{"leeway 5m", func(a *App) { a.Leeway = caddy.Duration(5 * time.Minute) }},
		{"16-character secret", func(a *App) { a.Clients[1].Secret = strings.Repeat("x", 16) }},
		{"client_id of 128 characters with every allowed punctuation", func(a *App) { a.Clients[0].ID = strings.Repeat("a", 123) + "._~:-" }},
		{"scope token with NQCHAR punctuation (RFC 6749 §3.3)", func(a *App) { a.Clients[0].Scopes = []string{"https://api.example/x!#$%&'()*+,-./:;<=>?@[]^_`{|}~"} }},
		{"metadata key of 64 characters", func(a *App) { a.Clients[0].Metadata = map[string]string{strings.Repeat("k", 61) + "_.-": "v"} }},
		{"explicit grant type", func(a *App) { a.Clients[0].GrantTypes = []string{"client_credentials"} }},
		{"EdDSA signing key", func(a *App) { a.SigningKey = &SigningKeyConfig{Algorithm: "EdDSA"} }},
		{"refresh_token_reuse_grace 0 (off)", func(a *App) { a.RefreshTokenReuseGrace = durationPtr(0) }},
		{"refresh_token_reuse_grace 1m", func(a *App) { a.RefreshTokenReuseGrace = durationPtr(time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := baseConfig()
			tt.mutate(a)
			provisionApp(t, a, newStorage(t))
		})
	}
}

// TestProvisionDefaults: the documented defaults are applied.
func TestProvisionDefaults(t *testing.T) {
	a := newApp(t, nil)
	if time.Duration(a.AccessTokenTTL) != time.Hour {
		t.Errorf("access_token_ttl = %v, want 1h", time.Duration(a.AccessTokenTTL))
	}
	if a.RefreshTokenReuseGrace == nil || time.Duration(*a.RefreshTokenReuseGrace) != 5*time.Second {
		t.Errorf("refresh_token_reuse_grace = %v, want 5s", a.RefreshTokenReuseGrace)
	}
	if a.Audience != testIssuer {
		t.Errorf("audience = %q, want the issuer (RFC 9068 §3 default)", a.Audience)
	}
	if a.SigningKey == nil || a.SigningKey.Algorithm != "ES256" {
		t.Errorf("signing_key = %+v, want ES256", a.SigningKey)
	}
	if a.Keyring().Active().Alg != "ES256" {
		t.Errorf("active key alg = %s", a.Keyring().Active().Alg)
	}
	if !slices.Equal(a.Clients[0].GrantTypes, []string{"client_credentials"}) {
		t.Errorf("grant_types = %v, want client_credentials", a.Clients[0].GrantTypes)
	}
	if a.Verifier() == nil || a.Verifier().Issuer() != testIssuer {
		t.Error("verifier not set up for the issuer")
	}
}

// TestAppClient: the oauthjwt.Authority view of clients, used by caddyscope
// for placeholders, exposes the public description only.
func TestAppClient(t *testing.T) {
	a := newApp(t, nil)
	info, ok, _ := a.Client(svcID)
	if !ok || info.ID != svcID || info.Name != "Reports service" || info.Metadata["tier"] != "gold" {
		t.Errorf("Client(%q) = %+v, %v", svcID, info, ok)
	}
	if _, ok, _ := a.Client("nobody"); ok {
		t.Error("unknown client found")
	}
	if _, ok, _ := a.Client(newFakeClient().ID); ok {
		t.Error("the internal stand-in for unknown clients is visible")
	}
}

func durationPtr(d time.Duration) *caddy.Duration { c := caddy.Duration(d); return &c }
