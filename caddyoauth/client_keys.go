package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// A client's public keys, for private_key_jwt client authentication (RFC
// 7523 §2.2) and the JWT bearer grant (RFC 7523 §2.1): an inline JWK Set,
// a file, or a jwks_uri fetched on first use.

// clientKeys is where a private_key_jwt client's public keys come from.
type clientKeys struct {
	inline map[string]*oauthjwt.Key // kid → key, from jwks
	single *oauthjwt.Key            // the key to use when the assertion has no kid

	uri    string // jwks_uri, fetched on first use
	once   sync.Once
	kf     keyfunc.Keyfunc
	kfErr  error
	ctx    context.Context
	logger *zap.Logger
}

// lookup finds the key for kid.
func (k *clientKeys) lookup(kid string) (*oauthjwt.Key, error) {
	if k.uri == "" {
		if kid == "" && k.single != nil {
			return k.single, nil
		}
		if key, ok := k.inline[kid]; ok {
			return key, nil
		}
		return nil, errors.New("no key with this kid in the client's jwks")
	}
	if err := k.fetch(); err != nil {
		return nil, err
	}
	if kid == "" {
		return nil, errors.New("an assertion checked against a jwks_uri needs a kid")
	}
	ctx, cancel := context.WithTimeout(k.ctx, 5*time.Second)
	defer cancel()
	jwk, err := k.kf.Storage().KeyRead(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("kid not in the client's jwks_uri: %v", err)
	}
	return oauthjwt.PinJWK(jwk, kid, nil, "")
}

// fetch sets up the jwks_uri's keyfunc on first use.
func (k *clientKeys) fetch() error {
	k.once.Do(func() {
		k.kf, k.kfErr = keyfunc.NewDefaultOverrideCtx(k.ctx, []string{k.uri}, keyfunc.Override{
			HTTPTimeout:       5 * time.Second,
			RefreshInterval:   time.Hour,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(30*time.Second), 1),
			RateLimitWaitMax:  5 * time.Second,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					k.logger.Warn("client jwks_uri refresh failed: keys already fetched stay in use", zap.String("jwks_uri", u), zap.Error(err))
				}
			},
		})
	})
	return k.kfErr
}

// provisionClientKeys reads the client's jwks (inline) or prepares its
// jwks_uri.
func (c *Client) provisionClientKeys(ctx context.Context, logger *zap.Logger) error {
	if len(c.JWKS) > 0 && c.JWKSURI != "" {
		return errors.New("jwks and jwks_uri: set one, not both")
	}
	if c.JWKSURI != "" {
		if err := oauthjwt.CheckEndpointURL(c.JWKSURI); err != nil {
			return fmt.Errorf("jwks_uri: %v", err)
		}
		c.keys = &clientKeys{uri: c.JWKSURI, ctx: ctx, logger: logger}
		return nil
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(c.JWKS, &set); err != nil {
		return fmt.Errorf("jwks: %v", err)
	}
	keys := &clientKeys{inline: make(map[string]*oauthjwt.Key)}
	for i, m := range set.Keys {
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return fmt.Errorf("jwks: key %d: %v", i, err)
		}
		key, err := oauthjwt.PinJWK(jwk, m.KID, nil, "")
		if err != nil {
			return fmt.Errorf("jwks: key %d: %v", i, err)
		}
		if _, dup := keys.inline[m.KID]; dup {
			return fmt.Errorf("jwks: kid %q twice", m.KID)
		}
		keys.inline[m.KID] = key
	}
	switch len(keys.inline) {
	case 0:
		return errors.New("jwks: no keys")
	case 1:
		for _, k := range keys.inline {
			keys.single = k
		}
	}
	c.keys = keys
	return nil
}
