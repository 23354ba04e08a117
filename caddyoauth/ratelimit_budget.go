package caddyoauth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"
)

// The memory of rate limits (issue 15, item 6). caddy-ratelimit (v0.1.0,
// ringbuffer.go) gives every key of a zone a ring of max_events
// time.Time values, allocated in full when the key is first seen: 24 B ×
// events per key, whether the key sends one request or all of them. A key
// is dropped by the sweep (every sweep_interval, default 1m) once its
// newest event is older than the window. So a zone's worst case is
//
//	keys × (24 B × events + per-key overhead)
//
// and the keys are what the zone is keyed on: {oauth.client_id} is one of
// the configured clients (an unauthenticated request has none), while a
// remote address or a header lets whoever sends requests choose keys.
//
// At load the oauth app finds every rate_limit zone of the http app,
// computes this, warns about it, and refuses a config whose total exceeds
// rate_limit_memory_budget.

const (
	// rateLimitEventBytes is one event of a ring: a time.Time (wall,
	// ext, loc) on a 64-bit platform.
	rateLimitEventBytes = 24
	// rateLimitKeyOverhead is what a key costs besides its ring: the
	// map entry, the limiter, the key itself and the allocator's
	// rounding of the ring (measured; docs/performance.md).
	rateLimitKeyOverhead = 512
	// defaultRateLimitKeys is how many distinct keys a zone keyed on
	// anything but a client or a constant is assumed to see in a window.
	defaultRateLimitKeys = 10000
	// defaultRateLimitBudget is where, without a configured budget, a
	// warning is logged.
	defaultRateLimitBudget = 256 << 20
	// rateLimitModuleID is caddy-ratelimit's handler.
	rateLimitModuleID = "http.handlers.rate_limit"
)

// rateLimitZone is one zone as the budget sees it.
type rateLimitZone struct {
	name   string
	key    string
	events int
	keys   int    // distinct keys assumed
	basis  string // why that many keys
}

// worstCase is the zone's memory when every assumed key has been seen.
func (z rateLimitZone) worstCase() int64 {
	return int64(z.keys) * (int64(z.events)*rateLimitEventBytes + rateLimitKeyOverhead)
}

// rateLimitConfig is what the budget reads of a rate_limit handler's
// JSON; reading the JSON keeps this package free of caddy-ratelimit.
type rateLimitConfig struct {
	RateLimits map[string]struct {
		Key       string `json:"key"`
		MaxEvents int    `json:"max_events"`
	} `json:"rate_limits"`
}

// zoneSetting is a zone's key and events as configured.
type zoneSetting struct {
	key    string
	events int
}

// rateLimitZones finds the rate_limit zones of every server's routes,
// error routes, named routes and subroutes. Two handlers with one zone
// name share its keys in caddy-ratelimit, so a name counts once, with its
// largest events.
func rateLimitZones(app *caddyhttp.App) (map[string]zoneSetting, error) {
	zones := make(map[string]zoneSetting)
	var errOut error
	var walk func(caddyhttp.RouteList)
	walk = func(routes caddyhttp.RouteList) {
		for _, r := range routes {
			for _, h := range r.Handlers {
				switch h := h.(type) {
				case *caddyhttp.Subroute:
					walk(h.Routes)
					if h.Errors != nil {
						walk(h.Errors.Routes)
					}
				case caddy.Module:
					if h.CaddyModule().ID != rateLimitModuleID {
						continue
					}
					var cfg rateLimitConfig
					b, err := json.Marshal(h)
					if err == nil {
						err = json.Unmarshal(b, &cfg)
					}
					if err != nil {
						errOut = fmt.Errorf("reading a rate_limit handler: %v", err)
						continue
					}
					for name, z := range cfg.RateLimits {
						if z.MaxEvents >= zones[name].events {
							zones[name] = zoneSetting{key: z.Key, events: z.MaxEvents}
						}
					}
				}
			}
		}
	}
	if app == nil {
		return zones, nil
	}
	for _, srv := range app.Servers {
		walk(srv.Routes)
		if srv.Errors != nil {
			walk(srv.Errors.Routes)
		}
		for _, r := range srv.NamedRoutes {
			walk(caddyhttp.RouteList{*r})
		}
	}
	return zones, errOut
}

// rateLimitBudget computes each zone's worst case, sorted by zone name.
func (a *App) rateLimitBudget(app *caddyhttp.App) ([]rateLimitZone, error) {
	found, err := rateLimitZones(app)
	if err != nil {
		return nil, err
	}
	others := a.RateLimitKeys
	if others == 0 {
		others = defaultRateLimitKeys
	}
	var zones []rateLimitZone
	for name, z := range found {
		zone := rateLimitZone{name: name, key: z.key, events: z.events}
		key := strings.TrimSpace(z.key)
		switch {
		case key == "{oauth.client_id}" || key == "{http.vars.oauth.client_id}":
			zone.keys, zone.basis = max(len(a.clients), 1), "configured clients"
		case !strings.Contains(key, "{"):
			zone.keys, zone.basis = 1, "a constant key"
		default:
			zone.keys, zone.basis = others, "rate_limit_keys"
		}
		zones = append(zones, zone)
	}
	slices.SortFunc(zones, func(x, y rateLimitZone) int { return strings.Compare(x.name, y.name) })
	return zones, nil
}

// checkRateLimitMemory logs every zone's worst case and refuses the config
// when their sum exceeds rate_limit_memory_budget; without a budget, a sum
// above 256 MiB is a warning.
func (a *App) checkRateLimitMemory(app *caddyhttp.App) error {
	zones, err := a.rateLimitBudget(app)
	if err != nil {
		return err
	}
	var total int64
	for _, z := range zones {
		total += z.worstCase()
		a.logger.Info("rate limit zone worst-case memory",
			zap.String("zone", z.name), zap.String("key", z.key),
			zap.Int("events", z.events), zap.Int("keys", z.keys), zap.String("keys_from", z.basis),
			zap.String("worst_case", humanize.IBytes(uint64(z.worstCase()))))
	}
	budget := a.RateLimitMemoryBudget
	limit := budget
	if limit == 0 {
		limit = defaultRateLimitBudget
	}
	if total <= limit {
		return nil
	}
	detail := make([]string, 0, len(zones))
	for _, z := range zones {
		detail = append(detail, fmt.Sprintf("%s: %d keys (%s) × (%d events × 24 B + %d B) = %s",
			z.name, z.keys, z.basis, z.events, rateLimitKeyOverhead, humanize.IBytes(uint64(z.worstCase()))))
	}
	if budget == 0 {
		a.logger.Warn("the rate_limit zones' worst-case memory exceeds 256 MiB; set rate_limit_memory_budget to refuse such a config, or lower events",
			zap.String("worst_case", humanize.IBytes(uint64(total))), zap.Strings("zones", detail))
		return nil
	}
	return fmt.Errorf("rate_limit_memory_budget: the rate_limit zones may take %s, over the budget of %s (%s); lower events, key the zone on {oauth.client_id}, or raise the budget",
		humanize.IBytes(uint64(total)), humanize.IBytes(uint64(budget)), strings.Join(detail, "; "))
}

// checkRateLimitMemoryAtStart runs checkRateLimitMemory on the config's
// http app, which every app of the config has provisioned by Start.
func (a *App) checkRateLimitMemoryAtStart() error {
	if a.caddyCtx == nil {
		return nil
	}
	v, err := a.caddyCtx.AppIfConfigured("http")
	if err != nil {
		return nil // no http app: no rate limits
	}
	app, _ := v.(*caddyhttp.App)
	return a.checkRateLimitMemory(app)
}
