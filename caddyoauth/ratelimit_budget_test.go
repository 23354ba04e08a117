package caddyoauth

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	caddyrl "github.com/mholt/caddy-ratelimit"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// rlHandler is a caddy-ratelimit handler with the given zones.
func rlHandler(zones map[string]*caddyrl.RateLimit) *caddyrl.Handler {
	return &caddyrl.Handler{RateLimits: zones}
}

func zone(key string, events int) *caddyrl.RateLimit {
	return &caddyrl.RateLimit{Key: key, MaxEvents: events, Window: caddy.Duration(time.Minute)}
}

// httpAppWith is an http app whose one server has the handlers in a route,
// a subroute and an error route, as a Caddyfile's handle blocks make.
func httpAppWith(top, sub, errs caddyhttp.MiddlewareHandler) *caddyhttp.App {
	srv := &caddyhttp.Server{
		Routes: caddyhttp.RouteList{
			{Handlers: []caddyhttp.MiddlewareHandler{top}},
			{Handlers: []caddyhttp.MiddlewareHandler{&caddyhttp.Subroute{Routes: caddyhttp.RouteList{
				{Handlers: []caddyhttp.MiddlewareHandler{sub}},
			}}}},
		},
		Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{Handlers: []caddyhttp.MiddlewareHandler{errs}}}},
	}
	return &caddyhttp.App{Servers: map[string]*caddyhttp.Server{"srv0": srv}}
}

// TestRateLimitEventBytes: the 24 B per event of the formula is the size
// of what caddy-ratelimit's ring holds, a time.Time.
func TestRateLimitEventBytes(t *testing.T) {
	if got := unsafe.Sizeof(time.Time{}); got != rateLimitEventBytes {
		t.Fatalf("time.Time is %d B, the budget counts %d", got, rateLimitEventBytes)
	}
}

// TestRateLimitBudget (issue 15, item 6): every zone is found, in routes,
// subroutes and error routes; a zone keyed on {oauth.client_id} counts the
// configured clients, a constant key one, any other key (a remote
// address: the sender chooses it) rate_limit_keys; the worst case is
// keys × (24 B × events + overhead).
func TestRateLimitBudget(t *testing.T) {
	a := newApp(t, nil) // two configured clients
	a.RateLimitKeys = 500
	app := httpAppWith(
		rlHandler(map[string]*caddyrl.RateLimit{"per_client": zone("{oauth.client_id}", 1000)}),
		rlHandler(map[string]*caddyrl.RateLimit{"per_ip": zone("{http.request.remote.host}", 20)}),
		rlHandler(map[string]*caddyrl.RateLimit{"global": zone("all", 100000)}),
	)
	zones, err := a.rateLimitBudget(app)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		keys  int
		bytes int64
	}{
		"global":     {1, 1 * (100000*24 + rateLimitKeyOverhead)},
		"per_client": {2, 2 * (1000*24 + rateLimitKeyOverhead)},
		"per_ip":     {500, 500 * (20*24 + rateLimitKeyOverhead)},
	}
	if len(zones) != len(want) {
		t.Fatalf("found zones %+v, want %v", zones, want)
	}
	for _, z := range zones {
		w, ok := want[z.name]
		if !ok || z.keys != w.keys || z.worstCase() != w.bytes {
			t.Errorf("zone %s: %d keys, %d B; want %+v", z.name, z.keys, z.worstCase(), w)
		}
	}
}

// TestRateLimitBudgetRefused: a config whose zones may take more than
// rate_limit_memory_budget is refused with the field and the zone named;
// within the budget it loads; without a budget, more than 256 MiB is a
// warning that names the zone.
func TestRateLimitBudgetRefused(t *testing.T) {
	// 10,000 assumed addresses × 10,000 events × 24 B ≈ 2.2 GiB.
	app := httpAppWith(
		rlHandler(map[string]*caddyrl.RateLimit{"login_per_ip": zone("{http.request.remote.host}", 10000)}),
		rlHandler(map[string]*caddyrl.RateLimit{"api": zone("{oauth.client_id}", 100)}),
		rlHandler(map[string]*caddyrl.RateLimit{}),
	)
	a := newApp(t, nil)
	a.RateLimitMemoryBudget = 256 << 20
	err := a.checkRateLimitMemory(app)
	if err == nil || !strings.Contains(err.Error(), "rate_limit_memory_budget") || !strings.Contains(err.Error(), "login_per_ip") {
		t.Fatalf("over budget: err = %v; want one naming rate_limit_memory_budget and the zone", err)
	}
	a.RateLimitMemoryBudget = 4 << 30
	if err := a.checkRateLimitMemory(app); err != nil {
		t.Errorf("within a 4 GiB budget: %v", err)
	}

	core, logs := observer.New(zapcore.InfoLevel)
	a.RateLimitMemoryBudget = 0
	a.logger = zap.New(core)
	if err := a.checkRateLimitMemory(app); err != nil {
		t.Errorf("without a budget the config is refused: %v", err)
	}
	warn := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warn) != 1 || !strings.Contains(fmt.Sprint(warn[0].ContextMap()["zones"]), "login_per_ip") {
		t.Errorf("want one warning naming login_per_ip, got %+v", warn)
	}

	small := httpAppWith(
		rlHandler(map[string]*caddyrl.RateLimit{"login_per_ip": zone("{http.request.remote.host}", 20)}),
		rlHandler(nil), rlHandler(nil))
	logs.TakeAll()
	if err := a.checkRateLimitMemory(small); err != nil || logs.FilterLevelExact(zapcore.WarnLevel).Len() != 0 {
		t.Errorf("a small zone: err %v, warnings %d", err, logs.FilterLevelExact(zapcore.WarnLevel).Len())
	}
}

// TestRateLimitBudgetOptions: the Caddyfile options and their mistakes.
func TestRateLimitBudgetOptions(t *testing.T) {
	parse := func(body string) (*App, error) {
		d := caddyfile.NewTestDispenser("oauth {\n issuer https://a.example\n " + body + "\n}")
		a := new(App)
		return a, a.UnmarshalCaddyfile(d)
	}
	a, err := parse("rate_limit_memory_budget 256MiB\n rate_limit_keys 2000")
	if err != nil || a.RateLimitMemoryBudget != 256<<20 || a.RateLimitKeys != 2000 {
		t.Fatalf("parsed %d, %d, %v", a.RateLimitMemoryBudget, a.RateLimitKeys, err)
	}
	for _, body := range []string{"rate_limit_memory_budget lots", "rate_limit_memory_budget 0", "rate_limit_keys -3", "rate_limit_keys", "rate_limit_memory_budget"} {
		if _, err := parse(body); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
	bad := baseConfig()
	bad.RateLimitMemoryBudget = -1
	if err := bad.provision(t.Context(), newStorage(t), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "rate_limit_memory_budget") {
		t.Errorf("a negative budget: %v", err)
	}
}
