package caddyscope

import "github.com/caddyapigw/gateway/internal/bearer"

// The RFC 6750 §3.1 error codes, as the tests here name them.
const (
	errInvalidRequest    = bearer.InvalidRequest
	errInvalidToken      = bearer.InvalidToken
	errInsufficientScope = bearer.InsufficientScope
)
