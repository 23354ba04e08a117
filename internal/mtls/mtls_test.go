package mtls

import (
	"crypto/tls"
	"testing"

	"github.com/caddyapigw/gateway/internal/mtls/mtlstest"
)

// TestCheckBinding: RFC 8705 §3: a bound token needs the very
// certificate on the connection.
func TestCheckBinding(t *testing.T) {
	ca, err := mtlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	one, _ := ca.Issue(mtlstest.Names{})
	two, _ := ca.Issue(mtlstest.Names{})
	x5t := Thumbprint(one.Cert)
	if len(x5t) != 43 {
		t.Fatalf("§3.1: x5t#S256 is base64url of 32 bytes, got %q", x5t)
	}
	tests := []struct {
		name  string
		state *tls.ConnectionState
		ok    bool
	}{
		{"§3: the same certificate", one.State(true), true},
		{"§3: unverified chain, same certificate (self-signed method)", one.State(false), true},
		{"§3: another certificate", two.State(true), false},
		{"§3: TLS without a certificate", &tls.ConnectionState{HandshakeComplete: true}, false},
		{"§3: no TLS", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desc := CheckBinding(tt.state, x5t)
			if (desc == "") != tt.ok {
				t.Fatalf("CheckBinding = %q, want ok=%v", desc, tt.ok)
			}
		})
	}
	if Verified(one.State(false)) || !Verified(one.State(true)) || Verified(nil) {
		t.Fatal("Verified does not follow VerifiedChains")
	}
}

// TestMatchSAN: RFC 8705 §2.1.2's SAN metadata.
func TestMatchSAN(t *testing.T) {
	ca, err := mtlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(mtlstest.Names{
		DNS:    []string{"client.example.com"},
		URIs:   []string{"spiffe://example.com/payments"},
		IPs:    []string{"2001:db8::1", "192.0.2.7"},
		Emails: []string{"Ops@Example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, want string
		match      bool
	}{
		{SANDNS, "client.example.com", true},
		{SANDNS, "CLIENT.example.COM", true},
		{SANDNS, "other.example.com", false},
		{SANDNS, "example.com", false},
		{SANURI, "spiffe://example.com/payments", true},
		{SANURI, "spiffe://example.com/payments/x", false},
		{SANIP, "2001:DB8:0::1", true},
		{SANIP, "192.0.2.7", true},
		{SANIP, "192.0.2.8", false},
		{SANIP, "not-an-ip", false},
		{SANEmail, "Ops@example.COM", true},
		{SANEmail, "ops@Example.com", false}, // the local part is case-sensitive
		{SANDNS, "spiffe://example.com/payments", false},
		{"other", "client.example.com", false},
	}
	for _, tt := range tests {
		if got := MatchSAN(c.Cert, tt.kind, tt.want); got != tt.match {
			t.Errorf("MatchSAN(%s, %q) = %v, want %v", tt.kind, tt.want, got, tt.match)
		}
	}
	for _, bad := range []struct{ kind, v string }{{SANIP, "1.2.3"}, {SANURI, "no-scheme"}, {SANEmail, "nobody"}, {SANDNS, "a b"}, {SANDNS, ""}} {
		if CheckSAN(bad.kind, bad.v) == "" {
			t.Errorf("CheckSAN(%s, %q) accepted", bad.kind, bad.v)
		}
	}
	if CheckSAN(SANURI, "spiffe://example.com/payments") != "" || CheckSAN(SANIP, "::1") != "" {
		t.Error("CheckSAN refused a good value")
	}
}
