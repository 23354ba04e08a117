// Command caddy is Caddy with the standard modules, the OAuth 2.0 gateway
// modules of this repository (caddyoauth, caddyscope) and caddy-ratelimit.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-ratelimit"

	_ "github.com/caddyapigw/gateway"
)

func main() {
	caddycmd.Main()
}
