package caddyoauth

import "github.com/caddyapigw/gateway/internal/oauthstore"

// Random values: 256 bits for secrets (codes, refresh tokens, session ids,
// CSRF secrets), 128 bits for identifiers (jti, family ids).
var (
	random256 = oauthstore.NewSecret
	randomID  = oauthstore.NewID
)
