package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPAROpenIDClient: pushed authorization requests (RFC 9126) with a
// relying party nobody here wrote. The example's notes-web is made to
// require PAR: its plain authorization request is refused; openid-client
// v6 pushes the request (buildAuthorizationUrlWithPAR), the person signs
// in through the request_uri, the library redeems the code and validates
// the ID token; the same request_uri does not work a second time.
func TestPAROpenIDClient(t *testing.T) {
	npmInstallIn(t, oidcRPDir, "openid-client")
	p := newPorts(t)
	cfg := exampleCaddyfile(t, p)
	anchor := "\t\tclient notes-web {\n"
	if !strings.Contains(cfg, anchor) {
		t.Fatal("example notes-web client not found")
	}
	cfg = strings.Replace(cfg, anchor, anchor+"\t\t\trequire_pushed_authorization_requests\n", 1)
	g := startGateway(t, p, cfg, "")
	callback := g.url("/demo/callback")

	// A plain request of a client that must push: refused, back to the
	// client (its redirect URI is registered), with no code.
	plain := url.Values{"response_type": {"code"}, "client_id": {notesWeb.id}, "redirect_uri": {callback},
		"scope": {"openid"}, "state": {"x"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	resp, _ := newPerson(t).get(g, "/oauth2/authorize?"+plain.Encode())
	loc, _ := resp.Location()
	if loc == nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
		t.Fatalf("plain request of a PAR client: %d %v", resp.StatusCode, loc)
	}

	rp := startNodeRP(t, g, "par.js", "--issuer", g.url(""), "--client-id", notesWeb.id,
		"--client-secret", notesWeb.secret, "--redirect-uri", callback)
	var start struct {
		AuthorizationURL string `json:"authorization_url"`
		PAREndpoint      string `json:"par_endpoint"`
		Error            string `json:"error"`
	}
	rp.next(&start)
	if start.Error != "" {
		t.Fatalf("openid-client could not push: %s", start.Error)
	}
	au, _ := url.Parse(start.AuthorizationURL)
	if au == nil || !strings.HasPrefix(au.Query().Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || au.Query().Has("redirect_uri") || au.Query().Has("code_challenge") {
		t.Fatalf("authorization URL %s: want client_id and request_uri only", start.AuthorizationURL)
	}
	back := newPerson(t).signInAt(g, start.AuthorizationURL)
	rp.send(back.String())
	var res struct {
		Claims map[string]any `json:"claims"`
		Error  string         `json:"error"`
		Cause  string         `json:"cause"`
	}
	rp.next(&res)
	if res.Error != "" || res.Claims["sub"] != demoUser || res.Claims["aud"] != notesWeb.id {
		t.Fatalf("openid-client after PAR: claims %v, error %s (cause %s)", res.Claims, res.Error, res.Cause)
	}
	// §4: the request_uri yielded its code; it is gone.
	again, page := newPerson(t).get(g, au.RequestURI())
	if again.StatusCode != http.StatusBadRequest || !strings.Contains(page, "expired or was already used") {
		t.Fatalf("request_uri used twice: %d", again.StatusCode)
	}
	t.Logf("openid-client v6: pushed to %s, signed in %v through the request_uri", start.PAREndpoint, res.Claims["sub"])
}
