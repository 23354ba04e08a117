package caddyoauth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTokenMetrics: each token request is counted: issued by client and
// grant, refused by grant and RFC 6749 §5.2 error code, and timed; a grant
// type the server does not know is the label "other", never the input.
func TestTokenMetrics(t *testing.T) {
	s := newTestServer(t, nil)
	initTokenMetrics()
	issued := func() float64 {
		return testutil.ToFloat64(tokenMetrics.issued.WithLabelValues(svcID, GrantClientCredentials))
	}
	refused := func(grant, code string) float64 {
		return testutil.ToFloat64(tokenMetrics.refused.WithLabelValues(grant, code))
	}
	i0 := issued()
	bad0 := refused(GrantClientCredentials, errInvalidClient)
	other0 := refused("other", errUnsupportedGrantType)
	obs0 := testutil.CollectAndCount(tokenMetrics.duration)

	if rec := basicToken(t, s, svcID, svcSecret, ccForm()); rec.Code != http.StatusOK {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	if rec := basicToken(t, s, svcID, "wrong", ccForm()); rec.Code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", rec.Code)
	}
	if rec := basicToken(t, s, svcID, svcSecret, url.Values{"grant_type": {"urn:made:up:grant-type-9f3a"}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("unknown grant: %d", rec.Code)
	}
	if got := issued(); got != i0+1 {
		t.Errorf("issued: %v, want %v", got, i0+1)
	}
	if got := refused(GrantClientCredentials, errInvalidClient); got != bad0+1 {
		t.Errorf("refused invalid_client: %v, want %v", got, bad0+1)
	}
	if got := refused("other", errUnsupportedGrantType); got != other0+1 {
		t.Errorf("refused unknown grant: %v, want %v", got, other0+1)
	}
	if testutil.CollectAndCount(tokenMetrics.duration) < obs0 || testutil.CollectAndCount(tokenMetrics.duration) == 0 {
		t.Error("no duration series")
	}
	if n := testutil.CollectAndCount(tokenMetrics.refused); n == 0 {
		t.Error("no refusal series")
	}
	reg := prometheus.NewPedanticRegistry()
	if err := registerTokenMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "made:up") || strings.Contains(l.GetValue(), "wrong") {
					t.Errorf("%s: the caller's input %q became a label value", f.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestTokenMetricsNoAllocs: counting a token request, issued or refused,
// allocates nothing once its client's counters are resolved, so the
// metrics add no garbage to the token endpoint.
func TestTokenMetricsNoAllocs(t *testing.T) {
	c := &Client{ClientSettings: ClientSettings{ID: svcID}}
	refusal := &oauthError{Code: errInvalidClient}
	start := time.Now()
	observeToken(start, GrantClientCredentials, c, nil)
	if n := testing.AllocsPerRun(100, func() {
		observeToken(start, GrantClientCredentials, c, nil)
		observeToken(start, "urn:made:up", nil, refusal)
		securityEvents.Inc(eventTokenIssued)
	}); n != 0 {
		t.Errorf("%v allocations per counted token request, want 0", n)
	}
}
