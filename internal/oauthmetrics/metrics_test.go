package oauthmetrics

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClientsBounded: client ids beyond the cap share the label "other",
// so many clients cannot grow a series' label set without bound; ids seen
// before keep their own label.
func TestClientsBounded(t *testing.T) {
	var c Clients
	seen := map[string]bool{}
	for i := range MaxClientLabels + 50 {
		seen[c.Label("client-"+strconv.Itoa(i))] = true
	}
	if len(seen) != MaxClientLabels+1 || !seen["other"] {
		t.Errorf("%d distinct labels (other: %v), want %d and other", len(seen), seen["other"], MaxClientLabels+1)
	}
	if got := c.Label("client-7"); got != "client-7" {
		t.Errorf("a client seen before the cap: %q", got)
	}
}

// TestRegisterTwice: registering the same collector again, in the same or
// in a new registry (a reload), is not an error; a clash of names is.
func TestRegisterTwice(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "oauth_test_total", Help: "test"})
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := Register(reg, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := Register(prometheus.NewPedanticRegistry(), c); err != nil {
		t.Fatal(err)
	}
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "oauth_test_total", Help: "other"})
	if err := Register(reg, clash); err == nil {
		t.Error("a different collector under the same name was accepted")
	}
}

// TestFixed: a Fixed counter exposes each declared value from zero, counts
// them, and ignores a value it was not given, so no caller can add one.
func TestFixed(t *testing.T) {
	f := NewFixed(prometheus.CounterOpts{Name: "oauth_fixed_test_total", Help: "test"}, "result", "ok", "error")
	if n := testutil.CollectAndCount(f.Vec); n != 2 {
		t.Fatalf("%d series before any event, want 2 (each value from zero)", n)
	}
	f.Inc("ok")
	f.Inc("ok")
	f.Inc("made-up")
	if got := testutil.ToFloat64(f.Child("ok")); got != 2 {
		t.Errorf("ok: %v, want 2", got)
	}
	if n := testutil.CollectAndCount(f.Vec); n != 2 {
		t.Errorf("%d series after an undeclared value, want 2", n)
	}
	if f.Child("made-up") != nil {
		t.Error("an undeclared value has a child")
	}
}
