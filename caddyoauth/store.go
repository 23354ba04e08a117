package caddyoauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/caddyapigw/gateway/internal/oauthstore"
)

func init() {
	caddy.RegisterModule(CaddyStoreModule{})
	caddy.RegisterModule(RedisStoreModule{})
	// go-redis prints its own connection errors to stderr; send them to
	// Caddy's log instead, as structured warnings.
	redis.SetLogger(redisLogger{})
}

// redisLogger forwards go-redis's messages to Caddy's logger.
type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("oauth.stores.redis").Warn(fmt.Sprintf(format, v...))
}

// The store contract of the `oauth.stores` namespace and its backends live
// in internal/oauthstore; these names keep them public here, so a
// third-party store module implements caddyoauth.Store as before.
type (
	// Store keeps the authorization server's state; see oauthstore.Store.
	Store = oauthstore.Store
	// MemoryStore is a Store in process memory, for tests.
	MemoryStore = oauthstore.MemoryStore
	// CaddyStore is a Store on Caddy's storage, the default.
	CaddyStore = oauthstore.CaddyStore
	// RedisStore is a Store on Redis, for a cluster.
	RedisStore = oauthstore.RedisStore
)

// ErrNotFound reports a key the store does not hold (or holds expired).
var ErrNotFound = oauthstore.ErrNotFound

// Constructors of the backends.
var (
	NewMemoryStore = oauthstore.NewMemoryStore
	NewCaddyStore  = oauthstore.NewCaddyStore
	NewRedisStore  = oauthstore.NewRedisStore
)

// DefaultRedisKeyPrefix namespaces this package's keys in a shared Redis.
const DefaultRedisKeyPrefix = oauthstore.DefaultRedisKeyPrefix

// storePrefix is where the default store keeps entries in Caddy storage.
const storePrefix = "oauth"

// CaddyStoreModule is the `oauth.stores.caddy` module: the Store on Caddy's
// configured storage, and the default.
type CaddyStoreModule struct {
	*CaddyStore `json:"-"`
}

// CaddyModule returns the Caddy module information.
func (CaddyStoreModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.caddy",
		New: func() caddy.Module { return new(CaddyStoreModule) },
	}
}

// Provision opens the store on ctx.Storage().
func (m *CaddyStoreModule) Provision(ctx caddy.Context) error {
	m.CaddyStore = NewCaddyStore(ctx.Storage(), storePrefix, ctx.Logger())
	return nil
}

// RedisStoreModule is the `oauth.stores.redis` module: the Store on Redis,
// shared by every gateway that points at the same Redis and key prefix.
type RedisStoreModule struct {
	// URL of the Redis server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS. Placeholders such as {env.REDIS_URL} are replaced.
	URL string `json:"url"`
	// KeyPrefix namespaces the keys. Default: caddyoauth:
	KeyPrefix string `json:"key_prefix,omitempty"`

	*RedisStore `json:"-"`
}

// CaddyModule returns the Caddy module information.
func (RedisStoreModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth.stores.redis",
		New: func() caddy.Module { return new(RedisStoreModule) },
	}
}

// redisStartTimeout bounds the connection check at load time.
const redisStartTimeout = 5 * time.Second

// Provision connects and checks that Redis answers: a gateway that cannot
// reach its store refuses to start rather than run without its state.
func (m *RedisStoreModule) Provision(ctx caddy.Context) error {
	raw := caddy.NewReplacer().ReplaceKnown(m.URL, "")
	if raw == "" {
		return errors.New("url: required")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// The URL may carry a password: name the field, not the value.
		return fmt.Errorf("url: not a redis:// or rediss:// URL: %v", redactURLError(err, raw))
	}
	if m.KeyPrefix == "" {
		m.KeyPrefix = DefaultRedisKeyPrefix
	}
	// A request's deadline bounds its commands' reads too, not only the
	// writes: a stalled Redis costs a request its own timeout, no more.
	opts.ContextTimeoutEnabled = true
	m.RedisStore = NewRedisStore(redis.NewClient(opts), m.KeyPrefix)
	pingCtx, cancel := context.WithTimeout(ctx, redisStartTimeout)
	defer cancel()
	if err := m.Ping(pingCtx); err != nil {
		_ = m.Close()
		m.RedisStore = nil
		return fmt.Errorf("redis at %s does not answer: %v", opts.Addr, err)
	}
	return nil
}

// Cleanup closes the connections.
func (m *RedisStoreModule) Cleanup() error {
	if m.RedisStore != nil {
		return m.Close()
	}
	return nil
}

// redactURLError keeps a URL's password out of an error message.
func redactURLError(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "REDACTED")
		}
	}
	return msg
}

// Interface guards
var (
	_ Store              = (*CaddyStoreModule)(nil)
	_ Store              = (*RedisStoreModule)(nil)
	_ caddy.Provisioner  = (*CaddyStoreModule)(nil)
	_ caddy.Provisioner  = (*RedisStoreModule)(nil)
	_ caddy.CleanerUpper = (*RedisStoreModule)(nil)
)
