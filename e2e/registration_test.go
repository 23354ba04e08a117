package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Dynamic client registration (RFC 7591, RFC 7592) against the example
// gateway with a registration block added: openid-client v6's
// dynamicClientRegistration, a library nobody here wrote, registers a
// confidential client with an initial access token the operator made
// through the admin API, and an open-registration public client (as MCP
// clients do); each is then used for the code flow with PKCE and a
// refresh, and manages itself with its registration access token.

// withRegistration adds a registration block to the example's oauth option.
func withRegistration(t *testing.T, cfg, block string) string {
	t.Helper()
	issuer := regexp.MustCompile(`(?m)^(\t\toauth \{\n\t\t\tissuer [^\n]*\n)|(\toauth \{\n\t\tissuer [^\n]*\n)`)
	if !issuer.MatchString(cfg) {
		t.Fatal("Caddyfile.example: no oauth option with an issuer line")
	}
	return issuer.ReplaceAllStringFunc(cfg, func(m string) string { return m + block })
}

// registerWithOpenIDClient runs oidc-rp/register.js and the sign-in it
// asks for; it returns the client information it printed.
func registerWithOpenIDClient(t *testing.T, g *gateway, authMethod, iat string) registeredClient {
	t.Helper()
	argv := []string{"register.js", "--issuer", g.url(""), "--redirect-uri", g.url("/demo/callback"), "--auth-method", authMethod}
	if iat != "" {
		argv = append(argv, "--initial-access-token", iat)
	}
	rp := startNodeRP(t, g, argv[0], argv[1:]...)
	var reg registeredClient
	rp.next(&reg)
	if reg.Error != "" {
		t.Fatalf("openid-client could not register: %s (cause %s)", reg.Error, reg.Cause)
	}
	back := newPerson(t).signInAt(g, reg.AuthorizationURL)
	rp.send(back.String())
	var res struct {
		Claims          map[string]any `json:"claims"`
		RefreshedClaims map[string]any `json:"refreshed_claims"`
		Error           string         `json:"error"`
		Cause           string         `json:"cause"`
	}
	rp.next(&res)
	if res.Error != "" {
		t.Fatalf("the registered client's code flow failed: %s (cause %s)", res.Error, res.Cause)
	}
	if res.Claims["aud"] != reg.ClientID || res.Claims["sub"] != demoUser || res.RefreshedClaims["sub"] != demoUser {
		t.Errorf("ID token %v, refreshed %v", res.Claims, res.RefreshedClaims)
	}
	return reg
}

type registeredClient struct {
	ClientID                string `json:"client_id"`
	HasSecret               bool   `json:"has_secret"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	RegistrationAccessToken string `json:"registration_access_token"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	AuthorizationURL        string `json:"authorization_url"`
	Error                   string `json:"error"`
	Cause                   string `json:"cause"`
}

// call sends a request with a Bearer token to the gateway.
func bearerCall(t *testing.T, g *gateway, method, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestDynamicRegistrationOpenIDClient(t *testing.T) {
	npmInstallIn(t, oidcRPDir, "openid-client")
	p := newPorts(t)
	cfg := withRegistration(t, exampleCaddyfile(t, p), `		registration {
			allow_public_clients
			scopes openid profile email notes:read
			redirect_uri_hosts localhost
		}
`)
	g := startGateway(t, p, cfg, "")

	// The metadata names the endpoint (RFC 8414 §2).
	resp, err := g.client.Get(g.url("/.well-known/openid-configuration"))
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["registration_endpoint"] != g.url("/oauth2/register") {
		t.Fatalf("registration_endpoint %v", meta["registration_endpoint"])
	}

	// Without an initial access token, openid-client is refused.
	t.Run("no initial access token", func(t *testing.T) {
		cmd := exec.Command("node", "register.js", "--issuer", g.url(""), "--redirect-uri", g.url("/demo/callback"), "--auth-method", "client_secret_post")
		cmd.Dir = oidcRPDir
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+g.rootCertPath())
		out, err := cmd.Output()
		// openid-client reports the 401's Bearer challenge (RFC 6750 §3).
		if err == nil || !strings.Contains(string(out), "OAUTH_WWW_AUTHENTICATE_CHALLENGE") || !strings.Contains(string(out), "bearer") {
			t.Errorf("registration without a token: %v %s", err, out)
		}
	})

	// The operator makes an initial access token through the admin API.
	resp, err = http.Post(g.adminURL("/oauth/registration/tokens"), "application/json", strings.NewReader(`{"expires_in":"1h","note":"e2e"}`))
	if err != nil {
		t.Fatal(err)
	}
	var iat struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&iat)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || iat.Token == "" {
		t.Fatalf("initial access token: %d", resp.StatusCode)
	}

	// A second one made with the command line, for the public client.
	out, errOut, code := cli(t, g, "registration-token", "create", "--expires-in", "10m", "--note", "cli", "--json")
	var iat2 struct{ Token, Note string }
	if err := json.Unmarshal([]byte(out), &iat2); code != 0 || err != nil || iat2.Token == "" || iat2.Note != "cli" {
		t.Fatalf("caddy oauth registration-token create: exit %d %v\n%s\n%s", code, err, out, errOut)
	}

	for _, tc := range []struct{ method, iat string }{{"client_secret_post", iat.Token}, {"none", iat2.Token}} {
		t.Run(tc.method, func(t *testing.T) {
			reg := registerWithOpenIDClient(t, g, tc.method, tc.iat)
			if reg.HasSecret != (tc.method != "none") || reg.TokenEndpointAuthMethod != tc.method ||
				reg.RegistrationClientURI != g.url("/oauth2/register/"+reg.ClientID) {
				t.Errorf("registered: %+v", reg)
			}
			// The admin API lists it as kept in the store.
			resp, err := http.Get(g.adminURL("/oauth/clients/" + reg.ClientID))
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if v["source"] != "store" || v["client_name"] != "Registered by openid-client" {
				t.Errorf("admin view: %v", v)
			}
			// RFC 7592: reads itself, a wrong token is refused, deletes itself.
			if r := bearerCall(t, g, "GET", reg.RegistrationClientURI, reg.RegistrationAccessToken); r.StatusCode != http.StatusOK {
				t.Errorf("read: %d", r.StatusCode)
			}
			if r := bearerCall(t, g, "GET", reg.RegistrationClientURI, iat.Token); r.StatusCode != http.StatusUnauthorized {
				t.Errorf("read with another token: %d", r.StatusCode)
			}
			if r := bearerCall(t, g, "DELETE", reg.RegistrationClientURI, reg.RegistrationAccessToken); r.StatusCode != http.StatusNoContent {
				t.Errorf("delete: %d", r.StatusCode)
			}
			resp, err = http.Get(g.adminURL("/oauth/clients/" + reg.ClientID))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("deleted client still in the admin API: %d", resp.StatusCode)
			}
		})
	}
}
