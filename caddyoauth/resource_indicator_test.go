package caddyoauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// Resource indicators (RFC 8707): the fixtures are two APIs that routes of
// the configuration declare, two that only the `listed` client is
// registered for, and one nobody knows.
const (
	notesAPI   = "https://notes.example/api"
	reportsAPI = "urn:example:reports"
	apiA       = "https://api-a.example/"
	apiB       = "https://api-b.example/v1?tenant=7" // a query is allowed (§2: SHOULD NOT)
	madeUpAPI  = "https://made-up.example/"

	listedID     = "listed"
	listedSecret = "listed-secret-0123456789-abcdefghijk"
)

// newResourceFlow is newFlow with the listed client and the two declared
// resources.
func newResourceFlow(t *testing.T) (*browser, *MemoryStore) {
	t.Helper()
	b, ms := newFlow(t, func(a *App) {
		a.Clients = append(a.Clients, &Client{ClientSettings: ClientSettings{ID: listedID, Scopes: []string{"user:read"}, Resources: []string{apiA, apiB}}, Secret: listedSecret})
	})
	b.s.app.DeclareResource(notesAPI)
	b.s.app.DeclareResource(reportsAPI)
	return b, ms
}

// assertAud checks a token's aud: a JSON string when one value is wanted,
// an array of exactly want when more (RFC 7519 §4.1.3).
func assertAud(t *testing.T, tok string, want ...string) {
	t.Helper()
	_, claims := jwtSegments(t, tok)
	checkAudValue(t, claims["aud"], want)
}

func checkAudValue(t *testing.T, got any, want []string) {
	t.Helper()
	if len(want) == 1 {
		if got != want[0] {
			t.Errorf("aud = %#v, want the string %q", got, want[0])
		}
		return
	}
	arr, ok := got.([]any)
	if !ok {
		t.Fatalf("aud = %#v, want an array of %q", got, want)
	}
	var strs []string
	for _, v := range arr {
		s, _ := v.(string)
		strs = append(strs, s)
	}
	if !reflect.DeepEqual(strs, want) {
		t.Errorf("aud = %q, want %q", strs, want)
	}
}

// withResources adds resource parameters to a form, in order.
func withResources(f url.Values, resources ...string) url.Values {
	for _, r := range resources {
		f.Add("resource", r)
	}
	return f
}

// TestCheckResourceURI: RFC 8707 §2, "Its value MUST be an absolute URI,
// as specified by Section 4.3 of [RFC3986]. The URI MUST NOT include a
// fragment component."
func TestCheckResourceURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://api.example/", true},
		{"https://api.example/app/", true},
		{"https://api.example:8443/v1?tenant=7", true}, // §2: a query SHOULD NOT, may
		{"urn:example:reports", true},                  // an abstract identifier (§2)
		{"http://localhost:8080", true},
		{"https://api.example/a%20b", true},
		{"", false},
		{"/api", false},                  // relative reference (RFC 3986 §4.2)
		{"api.example", false},           // no scheme
		{"//api.example/x", false},       // network-path reference, no scheme
		{"1https://api.example/", false}, // a scheme starts with a letter (§3.1)
		{"https://api.example/#", false}, // an empty fragment is still a fragment
		{"https://api.example/#frag", false},
		{"https://api.example/a b", false},
		{"https://api.example/é", false},
		{"https://api.example/\x00", false},
		{"https://api.example/%zz", false},
		{"https://api.example/%2", false},
		{`https://api.example/"x"`, false},
		{`https://api.example/a\b`, false},
		{"https://[::1/", false},
		{"https://api.example/" + strings.Repeat("a", maxResourceLen), false},
	} {
		err := checkResourceURI(tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("checkResourceURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

// FuzzParseResources: parseResources never panics; what it accepts is at
// most maxResources absolute URIs without a fragment, each once, in the
// order sent; what it refuses is a 400 invalid_target (RFC 8707 §2) whose
// description fits RFC 6749 §5.2.
func FuzzParseResources(f *testing.F) {
	for _, s := range []string{
		"https://api.example/", "urn:x", "https://a.example/#f", "/rel", "", "%", "a:%zz", "https://[::1",
		"https://a.example/\nhttps://b.example/", "x:\n\n\n\n\n\n\n\n\n\n\n", "https://a.example/\nhttps://a.example/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		values := strings.Split(joined, "\n")
		got, oerr := parseResources(values)
		if oerr != nil {
			if got != nil || oerr.Status != http.StatusBadRequest || oerr.Code != errInvalidTarget || !errorCharsOK(oerr.Description) {
				t.Fatalf("error %+v with %q", oerr, got)
			}
			return
		}
		if len(got) == 0 || len(got) > maxResources || len(got) > len(values) {
			t.Fatalf("accepted %d values out of %d: %q", len(got), len(values), got)
		}
		for i, r := range got {
			if strings.Contains(r, "#") || len(r) > maxResourceLen || checkResourceURI(r) != nil {
				t.Fatalf("accepted %q", r)
			}
			for _, earlier := range got[:i] {
				if earlier == r {
					t.Fatalf("%q twice", r)
				}
			}
			// Shown in an error_description, it fits RFC 6749 §5.2.
			if !errorCharsOK(showResource(r)) {
				t.Fatalf("%q does not fit an error_description", r)
			}
		}
	})
}

// TestResourceDirectGrants: the client credentials grant (RFC 8707 §2.2,
// "for all grant types"): the token's aud is exactly the resources asked
// for, a string for one and an array for more; none asked is the
// client's list, or the server's audience and the resources routes
// declared (so a client that knows nothing of RFC 8707 works at every API,
// as before); anything malformed,
// unknown, or not the client's is invalid_target (§2), 400 at the token
// endpoint.
func TestResourceDirectGrants(t *testing.T) {
	b, _ := newResourceFlow(t)
	long := "https://api.example/" + strings.Repeat("a", maxResourceLen)
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, "https://api.example/"+string(rune('a'+i)))
	}
	for _, tc := range []struct {
		name      string
		id, pw    string
		resources []string
		aud       []string // nil: invalid_target
	}{
		{"no resource: the server's audience and the declared resources (§2 default)", svcID, svcSecret, nil, []string{testIssuer, notesAPI, reportsAPI}},
		{"the server's own audience", svcID, svcSecret, []string{testIssuer}, []string{testIssuer}},
		{"a declared resource: aud is a string (§2)", svcID, svcSecret, []string{notesAPI}, []string{notesAPI}},
		{"two resources: aud is an array, in order (§2)", svcID, svcSecret, []string{reportsAPI, notesAPI}, []string{reportsAPI, notesAPI}},
		{"the same resource twice counts once", svcID, svcSecret, []string{notesAPI, notesAPI}, []string{notesAPI}},
		{"a made-up resource (§2 unknown)", svcID, svcSecret, []string{madeUpAPI}, nil},
		{"a made-up resource next to a declared one", svcID, svcSecret, []string{notesAPI, madeUpAPI}, nil},
		{"another client's resource", svcID, svcSecret, []string{apiA}, nil},
		{"a fragment (§2 MUST NOT)", svcID, svcSecret, []string{notesAPI + "#x"}, nil},
		{"a relative URI (§2 absolute)", svcID, svcSecret, []string{"/api"}, nil},
		{"an empty resource (§2 malformed)", svcID, svcSecret, []string{""}, nil},
		{"longer than the bound", svcID, svcSecret, []string{long}, nil},
		{"more values than the bound", svcID, svcSecret, eleven, nil},
		{"listed client, no resource: its whole list", listedID, listedSecret, nil, []string{apiA, apiB}},
		{"listed client, one of its list", listedID, listedSecret, []string{apiB}, []string{apiB}},
		{"listed client, a declared resource not in its list", listedID, listedSecret, []string{notesAPI}, nil},
		{"listed client, the server's audience not in its list", listedID, listedSecret, []string{testIssuer}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := basicToken(t, b.s, tc.id, tc.pw, withResources(ccForm(), tc.resources...))
			if tc.aud == nil {
				assertOAuthError(t, rec, http.StatusBadRequest, errInvalidTarget)
				return
			}
			assertAud(t, decodeTokenResponse(t, rec).AccessToken, tc.aud...)
		})
	}
}

// spaToken posts form as the SPA (a public client).
func spaToken(t *testing.T, b *browser, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	form.Set("client_id", spaID)
	return postToken(t, b.s, form)
}

// spaCode approves the SPA's request with these resource parameters and
// returns the code and its verifier.
func spaCode(t *testing.T, b *browser, resources ...string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkce()
	q := authorizeQuery(challenge)
	for _, r := range resources {
		q += "&resource=" + url.QueryEscape(r)
	}
	u := b.approve(q)
	code = u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", u)
	}
	return code, verifier
}

// exchangeForm is the SPA's code exchange, with resource parameters.
func exchangeForm(code, verifier string, resources ...string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect}, "code_verifier": {verifier}}
	return withResources(f, resources...)
}

func refreshForm(tok string, resources ...string) url.Values {
	return withResources(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, resources...)
}

// userTokensOf decodes a code or refresh response.
func userTokensOf(t *testing.T, rec *httptest.ResponseRecorder) userTokens {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var ut userTokens
	if err := json.Unmarshal(rec.Body.Bytes(), &ut); err != nil || ut.AccessToken == "" {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	return ut
}

// TestResourceCodeAndRefresh: the resources of the authorization request
// are the grant's (RFC 8707 §2.1); the code exchange and each refresh may
// name a subset (§2.2, "a subset thereof"), never another resource, and
// the refresh token stays bound to the full original grant (§2.2).
func TestResourceCodeAndRefresh(t *testing.T) {
	b, _ := newResourceFlow(t)

	t.Run("no resource at the exchange: all of the grant's", func(t *testing.T) {
		code, v := spaCode(t, b, notesAPI, reportsAPI)
		ut := userTokensOf(t, spaToken(t, b, exchangeForm(code, v)))
		assertAud(t, ut.AccessToken, notesAPI, reportsAPI)
		// A refresh without resource: the full grant again.
		ut = userTokensOf(t, spaToken(t, b, refreshForm(ut.RefreshToken)))
		assertAud(t, ut.AccessToken, notesAPI, reportsAPI)
	})
	t.Run("exchange narrows; the refresh token keeps the full grant (§2.2)", func(t *testing.T) {
		code, v := spaCode(t, b, notesAPI, reportsAPI)
		ut := userTokensOf(t, spaToken(t, b, exchangeForm(code, v, notesAPI)))
		assertAud(t, ut.AccessToken, notesAPI)
		ut = userTokensOf(t, spaToken(t, b, refreshForm(ut.RefreshToken, reportsAPI)))
		assertAud(t, ut.AccessToken, reportsAPI)
	})
	t.Run("exchange widens: invalid_target", func(t *testing.T) {
		code, v := spaCode(t, b, notesAPI)
		assertOAuthError(t, spaToken(t, b, exchangeForm(code, v, reportsAPI)), http.StatusBadRequest, errInvalidTarget)
	})
	t.Run("exchange names a malformed resource: invalid_target, the code is not spent", func(t *testing.T) {
		code, v := spaCode(t, b, notesAPI)
		assertOAuthError(t, spaToken(t, b, exchangeForm(code, v, "notes")), http.StatusBadRequest, errInvalidTarget)
		assertAud(t, userTokensOf(t, spaToken(t, b, exchangeForm(code, v))).AccessToken, notesAPI)
	})
	t.Run("no resource at the authorization request: the default only (§2.1)", func(t *testing.T) {
		code, v := spaCode(t, b)
		assertOAuthError(t, spaToken(t, b, exchangeForm(code, v, madeUpAPI)), http.StatusBadRequest, errInvalidTarget)
		code, v = spaCode(t, b)
		assertAud(t, userTokensOf(t, spaToken(t, b, exchangeForm(code, v, notesAPI))).AccessToken, notesAPI)
		code, v = spaCode(t, b)
		ut := userTokensOf(t, spaToken(t, b, exchangeForm(code, v)))
		assertAud(t, ut.AccessToken, testIssuer, notesAPI, reportsAPI)
		assertAud(t, userTokensOf(t, spaToken(t, b, refreshForm(ut.RefreshToken, testIssuer))).AccessToken, testIssuer)
	})
	t.Run("refresh widens: invalid_target, and the token still works", func(t *testing.T) {
		code, v := spaCode(t, b, notesAPI)
		ut := userTokensOf(t, spaToken(t, b, exchangeForm(code, v)))
		for _, wider := range [][]string{{reportsAPI}, {notesAPI, reportsAPI}, {madeUpAPI}, {testIssuer}} {
			assertOAuthError(t, spaToken(t, b, refreshForm(ut.RefreshToken, wider...)), http.StatusBadRequest, errInvalidTarget)
		}
		// Refused before the use was claimed: not taken for reuse.
		assertAud(t, userTokensOf(t, spaToken(t, b, refreshForm(ut.RefreshToken, notesAPI))).AccessToken, notesAPI)
	})
}

// TestResourceAuthorizationRequest: at the authorization endpoint a
// resource that is malformed (§2: relative, with a fragment) or not the
// client's is refused with invalid_target in the error redirect (§2.1,
// RFC 6749 §4.1.2.1), since the redirect URI is verified; an unknown
// client or redirect URI still gets a page, never a redirect. The consent
// page lists the resources.
func TestResourceAuthorizationRequest(t *testing.T) {
	b, _ := newResourceFlow(t)
	_, challenge := pkce()
	for _, tc := range []struct{ name, resource string }{
		{"made up", madeUpAPI},
		{"fragment", notesAPI + "#x"},
		{"relative", "/api"},
		{"another client's", apiA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge)+"&resource="+url.QueryEscape(tc.resource), nil)
			if rec.Code != http.StatusFound {
				t.Fatalf("status %d, want a redirect: %s", rec.Code, rec.Body)
			}
			u, _ := url.Parse(rec.Header().Get("Location"))
			q := u.Query()
			if !strings.HasPrefix(u.String(), spaRedirect) || q.Get("error") != errInvalidTarget || q.Get("state") != "st-123/+= x" || q.Get("iss") != testIssuer {
				t.Errorf("redirect %s, want %s?error=invalid_target with state and iss", u, spaRedirect)
			}
		})
	}
	rec := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge, "redirect_uri", "https://evil.example/cb")+"&resource="+url.QueryEscape(madeUpAPI), nil)
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
		t.Errorf("unverified redirect URI: %d %q, want an error page", rec.Code, rec.Header().Get("Location"))
	}

	// The consent page names where the tokens will be used, and carries
	// the resources through its form.
	rec = b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge)+"&resource="+url.QueryEscape(notesAPI)+"&resource="+url.QueryEscape(reportsAPI), nil)
	if strings.Contains(rec.Body.String(), `name="password"`) {
		rec = b.signIn(rec, aliceUser, alicePass)
		rec = b.do(http.MethodGet, rec.Header().Get("Location"), nil)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "<code>"+notesAPI+"</code>") || !strings.Contains(body, "<code>"+reportsAPI+"</code>") {
		t.Errorf("consent page does not list the resources:\n%s", body)
	}
	if req, _ := url.ParseQuery(fields(body).Get("request")); !reflect.DeepEqual(req["resource"], []string{notesAPI, reportsAPI}) {
		t.Errorf("consent form carries resources %q", req["resource"])
	}
}

// TestResourceOldRecords: a code and a refresh family stored by the
// previous version, without resources, are the default resource (§2.1):
// the server's audience and the declared resources, so their tokens keep
// working at every API, as before.
func TestResourceOldRecords(t *testing.T) {
	b, ms := newResourceFlow(t)
	ctx := context.Background()
	// dropResources rewrites every record under prefix as the previous
	// version wrote it: the same JSON without "resources".
	dropResources := func(prefix string) {
		t.Helper()
		keys, err := ms.List(ctx, prefix)
		if err != nil || len(keys) == 0 {
			t.Fatalf("no %s records: %v", prefix, err)
		}
		for _, k := range keys {
			raw, err := ms.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "resources")
			out, _ := json.Marshal(m)
			if err := ms.Put(ctx, k, out, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	code, v := spaCode(t, b, notesAPI)
	dropResources("codes/")
	ut := userTokensOf(t, spaToken(t, b, exchangeForm(code, v)))
	assertAud(t, ut.AccessToken, testIssuer, notesAPI, reportsAPI)

	code, v = spaCode(t, b, notesAPI)
	ut = userTokensOf(t, spaToken(t, b, exchangeForm(code, v)))
	assertAud(t, ut.AccessToken, notesAPI)
	dropResources("refresh-families/")
	ut = userTokensOf(t, spaToken(t, b, refreshForm(ut.RefreshToken)))
	assertAud(t, ut.AccessToken, testIssuer, notesAPI, reportsAPI)
}

// TestResourceJWTBearer: the JWT bearer grant takes resource parameters
// too (RFC 8707 §2.2, "for all grant types"); an invalid_target is
// answered before the assertion's jti is spent.
func TestResourceJWTBearer(t *testing.T) {
	f := newBearerFixture(t)
	f.s.app.DeclareResource(notesAPI)
	assertion := func(jti string) string {
		c := jwt.MapClaims{"iss": idpIssuer, "sub": "someone", "aud": tokenURL, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": jti}
		tk := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tk.Header["kid"] = "idp-1"
		s, _ := tk.SignedString(f.idpKey)
		return s
	}
	grant := func(a string, resources ...string) url.Values {
		return withResources(url.Values{"grant_type": {GrantJWTBearer}, "assertion": {a}}, resources...)
	}
	a := assertion("r-1")
	assertOAuthError(t, basicToken(t, f.s, partnerID, webSecret, grant(a, madeUpAPI)), http.StatusBadRequest, errInvalidTarget)
	rec := basicToken(t, f.s, partnerID, webSecret, grant(a, notesAPI))
	assertAud(t, decodeTokenResponse(t, rec).AccessToken, notesAPI)
	rec = basicToken(t, f.s, partnerID, webSecret, grant(assertion("r-2")))
	assertAud(t, decodeTokenResponse(t, rec).AccessToken, testIssuer, notesAPI)
}

// TestResourceIntrospection: the introspection response's aud is the
// token's, a string or an array as in the token (RFC 8707 §2, RFC 7662
// §2.2).
func TestResourceIntrospection(t *testing.T) {
	b, _ := newResourceFlow(t)
	for _, want := range [][]string{{notesAPI}, {notesAPI, reportsAPI}} {
		tok := decodeTokenResponse(t, basicToken(t, b.s, svcID, svcSecret, withResources(ccForm(), want...))).AccessToken
		_, m := introspectAs(t, b.s, webID, webSecret, tok)
		if m["active"] != true {
			t.Fatalf("inactive: %v", m)
		}
		checkAudValue(t, m["aud"], want)
	}
}

// TestClientResourcesSetting: a client's resources are absolute URIs
// without a fragment (RFC 8707 §2), each once; the config error names
// the field.
func TestClientResourcesSetting(t *testing.T) {
	for _, tc := range []struct {
		resources []string
		err       string
	}{
		{[]string{apiA, apiB, reportsAPI}, ""},
		{[]string{"https://api.example/#x"}, "resources:"},
		{[]string{"api.example"}, "resources:"},
		{[]string{apiA, apiA}, "listed twice"},
	} {
		cfg := baseConfig()
		cfg.Clients[0].Resources = tc.resources
		err := cfg.provision(context.Background(), newStorage(t), zap.NewNop())
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("resources %q: %v, want %q", tc.resources, err, tc.err)
		}
	}
}
