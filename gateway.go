// Package gateway registers this repository's Caddy modules: the `oauth`
// app and `oauth_server` handler (package caddyoauth) and the `oauth_scope`
// handler (package caddyscope). Importing it is what xcaddy does with
//
//	xcaddy build --with github.com/caddyapigw/gateway --with github.com/mholt/caddy-ratelimit
//
// cmd/caddy is the same build as a plain Go main package.
package gateway

import (
	_ "github.com/caddyapigw/gateway/caddyoauth" // oauth app, oauth_server
	_ "github.com/caddyapigw/gateway/caddyscope" // oauth_scope
)
