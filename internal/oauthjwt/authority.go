package oauthjwt

// Authority is what a resource-side handler needs from the local
// authorization server (the caddyoauth app) to accept its tokens in-process,
// with no HTTP round trip. caddyscope finds it with ctx.AppIfConfigured and
// a type assertion, so neither module imports the other.
type Authority interface {
	// Verifier checks tokens issued by this authority.
	Verifier() *Verifier
	// Client describes a registered client, for identity placeholders.
	Client(id string) (ClientInfo, bool)
}

// ClientInfo is the public description of a registered client.
type ClientInfo struct {
	ID       string
	Name     string
	Metadata map[string]string
}
