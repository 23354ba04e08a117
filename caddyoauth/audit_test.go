package caddyoauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestAuditLog: security events are one line each on the oauth.audit
// logger (so `log { include oauth.audit }` can send them to their own
// file), with the client, user, remote address and reason, and never a
// secret or password.
func TestAuditLog(t *testing.T) {
	b, _ := newFlow(t, nil)
	core, logs := observer.New(zapcore.InfoLevel)
	b.s.app.audit = &auditor{log: zap.New(core).Named("oauth").Named("audit")}

	if rec := basicToken(t, b.s, svcID, svcSecret, ccForm()); rec.Code != http.StatusOK {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	if rec := basicToken(t, b.s, svcID, "not-the-secret-4f9a", ccForm()); rec.Code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", rec.Code)
	}
	_, challenge := pkce()
	page := b.do(http.MethodGet, "/oauth2/authorize?"+authorizeQuery(challenge), nil)
	b.signIn(page, aliceUser, "wrong password 7c1e")

	want := []struct {
		event  string
		fields map[string]string
	}{
		{"token_issued", map[string]string{"client_id": svcID, "grant": GrantClientCredentials}},
		{"token_refused", map[string]string{"client_id": svcID, "error": errInvalidClient}},
		{"login_failed", map[string]string{"user": aliceUser, "client_id": spaID}},
	}
	entries := logs.All()
	if len(entries) != len(want) {
		t.Fatalf("%d audit lines, want %d: %v", len(entries), len(want), entries)
	}
	for i, w := range want {
		e := entries[i]
		f := e.ContextMap()
		if e.LoggerName != "oauth.audit" || e.Message != w.event || f["event"] != "oauth."+w.event || f["remote_ip"] == "" {
			t.Errorf("line %d: logger %q message %q fields %v, want %s", i, e.LoggerName, e.Message, f, w.event)
		}
		for k, v := range w.fields {
			if f[k] != v {
				t.Errorf("%s: %s = %v, want %q", w.event, k, f[k], v)
			}
		}
		line := fmt.Sprint(f)
		for _, secret := range []string{svcSecret, "not-the-secret-4f9a", "wrong password 7c1e", alicePass} {
			if strings.Contains(line, secret) {
				t.Errorf("%s carries a secret: %s", w.event, line)
			}
		}
	}
}

// TestAuditValuesBounded: a value that came from a request is cut, so an
// event cannot carry arbitrary amounts of input.
func TestAuditValuesBounded(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	au := &auditor{log: zap.New(core)}
	au.emit(nil, eventTokenRefused, map[string]any{"client_id": strings.Repeat("x", 10000)})
	if got := logs.All()[0].ContextMap()["client_id"].(string); len(got) > maxEventValue+len("…") {
		t.Errorf("client_id of %d bytes logged", len(got))
	}
}

// TestSecurityEventCounts: each security event is also counted
// (oauth_security_events_total), under its own name only.
func TestSecurityEventCounts(t *testing.T) {
	rotated := securityEvents.Child(eventKeyRotated)
	issued := securityEvents.Child(eventTokenIssued)
	before, issued0 := testutil.ToFloat64(rotated), testutil.ToFloat64(issued)
	app := newApp(t, baseConfig())
	if _, err := app.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(rotated); got != before+1 {
		t.Errorf("key_rotated count %v, want %v", got, before+1)
	}
	if got := testutil.ToFloat64(issued); got != issued0 {
		t.Errorf("token_issued moved by a rotation: %v", got-issued0)
	}
}
