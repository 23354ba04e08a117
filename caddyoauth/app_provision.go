package caddyoauth

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Lifetimes of what a person's sign-in creates: defaults and bounds.
const (
	DefaultRefreshTokenTTL    = 14 * 24 * time.Hour
	DefaultRefreshTokenMaxTTL = 30 * 24 * time.Hour
	DefaultSessionTTL         = time.Hour
	DefaultSessionMaxTTL      = 12 * time.Hour
	maxRefreshTokenMaxTTL     = 365 * 24 * time.Hour
	maxSessionMaxTTL          = 30 * 24 * time.Hour
	DefaultRefreshReuseGrace  = 5 * time.Second
	maxRefreshReuseGrace      = time.Minute
	defaultUserinfoScope      = "profile"
)

// provisionPersonSettings checks the settings of the flows that involve a
// person: sessions, refresh tokens, consent texts, userinfo, sign-up.
func (a *App) provisionPersonSettings() error {
	for _, d := range []struct {
		name     string
		v        *caddy.Duration
		def, min time.Duration
		max      time.Duration
	}{
		{"refresh_token_ttl", &a.RefreshTokenTTL, DefaultRefreshTokenTTL, time.Minute, maxRefreshTokenMaxTTL},
		{"refresh_token_max_ttl", &a.RefreshTokenMaxTTL, DefaultRefreshTokenMaxTTL, time.Minute, maxRefreshTokenMaxTTL},
		{"session_ttl", &a.SessionTTL, DefaultSessionTTL, time.Minute, maxSessionMaxTTL},
		{"session_max_ttl", &a.SessionMaxTTL, DefaultSessionMaxTTL, time.Minute, maxSessionMaxTTL},
	} {
		if *d.v == 0 {
			*d.v = caddy.Duration(d.def)
		}
		if *d.v < caddy.Duration(d.min) || *d.v > caddy.Duration(d.max) {
			return fmt.Errorf("%s: %s is outside %s..%s", d.name, time.Duration(*d.v), d.min, d.max)
		}
	}
	if a.RefreshTokenReuseGrace == nil {
		g := caddy.Duration(DefaultRefreshReuseGrace)
		a.RefreshTokenReuseGrace = &g
	}
	if err := checkReuseGrace(*a.RefreshTokenReuseGrace); err != nil {
		return err
	}
	if a.RefreshTokenTTL > a.RefreshTokenMaxTTL {
		return fmt.Errorf("refresh_token_ttl: %s is longer than refresh_token_max_ttl %s", time.Duration(a.RefreshTokenTTL), time.Duration(a.RefreshTokenMaxTTL))
	}
	if a.SessionTTL > a.SessionMaxTTL {
		return fmt.Errorf("session_ttl: %s is longer than session_max_ttl %s", time.Duration(a.SessionTTL), time.Duration(a.SessionMaxTTL))
	}
	for sc := range a.ScopeDescriptions {
		if !oauthjwt.ValidScopeToken(sc) {
			return fmt.Errorf("scope_descriptions: %q is not a valid scope token (RFC 6749 §3.3)", sc)
		}
	}
	if a.UserinfoScope == "" {
		a.UserinfoScope = defaultUserinfoScope
	}
	if !oauthjwt.ValidScopeToken(a.UserinfoScope) {
		return fmt.Errorf("userinfo_scope: %q is not a valid scope token (RFC 6749 §3.3)", a.UserinfoScope)
	}
	if a.Signup != nil {
		if a.Signup.MinPasswordLength == 0 {
			a.Signup.MinPasswordLength = defaultMinPasswordLength
		}
		if a.Signup.MinPasswordLength < 8 || a.Signup.MinPasswordLength > maxPasswordBytes {
			return fmt.Errorf("signup: min_password_length %d is outside 8..%d", a.Signup.MinPasswordLength, maxPasswordBytes)
		}
	}
	return nil
}

// checkReuseGrace refuses a refresh_token_reuse_grace outside 0..1m: a
// longer window would let a stolen, rotated token be exchanged long after
// its rotation (RFC 9700 §4.14.2 allows only a short one).
func checkReuseGrace(v caddy.Duration) error {
	if v < 0 || v > caddy.Duration(maxRefreshReuseGrace) {
		return fmt.Errorf("refresh_token_reuse_grace: %s is outside 0s..%s", time.Duration(v), maxRefreshReuseGrace)
	}
	return nil
}
