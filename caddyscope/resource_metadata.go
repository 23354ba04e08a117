package caddyscope

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// wellKnownResource is the well-known URI suffix of RFC 9728 §3.
const wellKnownResource = "/.well-known/oauth-protected-resource"

func init() {
	caddy.RegisterModule(ResourceMetadata{})
	httpcaddyfile.RegisterHandlerDirective("oauth_resource_metadata", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		m := new(ResourceMetadata)
		return m, m.UnmarshalCaddyfile(h.Dispenser)
	})
	// Right after try_files, so ahead of oauth_scope (registered earlier,
	// in caddyfile.go, and pushed one place down by this): a site-wide
	// oauth_scope would otherwise demand a token for the metadata that
	// says where to get one.
	httpcaddyfile.RegisterDirectiveOrder("oauth_resource_metadata", httpcaddyfile.After, "try_files")
}

// ResourceMetadata is the `oauth_resource_metadata` handler: it publishes
// the OAuth 2.0 Protected Resource Metadata (RFC 9728) of every
// `oauth_scope` route with a `resource`, at the well-known location that
// RFC 9728 §3.1 derives from the resource identifier: for the resource
// https://api.example.com/notes, at
// https://api.example.com/.well-known/oauth-protected-resource/notes.
// The routes' 401 and 403 challenges point there (resource_metadata,
// §5.1), so a client that has never seen the API finds the authorization
// server that issues its tokens, and the scopes to ask for.
//
// Requests for other paths go on to the next handler.
type ResourceMetadata struct{}

// CaddyModule returns the Caddy module information.
func (ResourceMetadata) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_resource_metadata",
		New: func() caddy.Module { return new(ResourceMetadata) },
	}
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	oauth_resource_metadata
//
// It takes no options: the documents come from the oauth_scope routes.
func (m *ResourceMetadata) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("oauth_resource_metadata takes no arguments or options: the documents come from the oauth_scope routes with a resource")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (m ResourceMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	suffix, ok := strings.CutPrefix(r.URL.Path, wellKnownResource)
	if !ok || (suffix != "" && suffix[0] != '/') {
		return next.ServeHTTP(w, r)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	doc, ok := resources.document(scheme+"://"+r.Host+suffix, suffix)
	if !ok {
		return caddyhttp.Error(http.StatusNotFound, nil)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "max-age=300")
	// Public, and read by browser-based clients from other origins.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// resourceDocument is an RFC 9728 §2 metadata document.
type resourceDocument struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
	BearerMethods        []string `json:"bearer_methods_supported"`
	ResourceName         string   `json:"resource_name,omitempty"`
}

// resourceEntry is what one oauth_scope handler says about its resource.
type resourceEntry struct {
	resource string
	path     string // the resource's path, "" for none
	servers  []string
	scopes   []string
	name     string
}

// resourceRegistry holds the entries of every provisioned oauth_scope
// with a resource, across configurations: a reload provisions the new
// handlers before the old ones are cleaned up, so for a while both are
// here, and a document is the union of the entries for its resource.
type resourceRegistry struct {
	mu      sync.Mutex
	entries []*resourceEntry
}

var resources = new(resourceRegistry)

func (g *resourceRegistry) add(e *resourceEntry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entries = append(g.entries, e)
}

func (g *resourceRegistry) remove(e *resourceEntry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entries = slices.DeleteFunc(g.entries, func(x *resourceEntry) bool { return x == e })
}

// document returns the metadata of the resource identified by want (the
// request's scheme, host and path); failing an exact match, of the one
// resource whose path is path, since the host a client uses (or the
// scheme, behind a proxy that terminates TLS) may differ from the
// configured identifier, which is what the document states.
func (g *resourceRegistry) document(want, path string) (*resourceDocument, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := ""
	for _, e := range g.entries {
		if e.resource == want {
			id = want
			break
		}
	}
	if id == "" {
		for _, e := range g.entries {
			if e.path != path {
				continue
			}
			if id != "" && id != e.resource {
				return nil, false // ambiguous
			}
			id = e.resource
		}
	}
	if id == "" {
		return nil, false
	}
	doc := &resourceDocument{Resource: id, BearerMethods: []string{"header"}}
	for _, e := range g.entries {
		if e.resource != id {
			continue
		}
		doc.AuthorizationServers = appendNew(doc.AuthorizationServers, e.servers...)
		doc.ScopesSupported = appendNew(doc.ScopesSupported, e.scopes...)
		if doc.ResourceName == "" {
			doc.ResourceName = e.name
		}
	}
	return doc, true
}

// appendNew appends the values of add not already in list.
func appendNew(list []string, add ...string) []string {
	for _, v := range add {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// metadataURL is where RFC 9728 §3.1 puts the metadata of resource: the
// well-known suffix inserted between the host and the path, a trailing
// slash of the path dropped.
func metadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + wellKnownResource + path, nil
}

// resourcePath is the path part of a resource identifier as the metadata
// handler sees it in a request: unescaped, without a trailing slash.
func resourcePath(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = ResourceMetadata{}
	_ caddyfile.Unmarshaler       = (*ResourceMetadata)(nil)
)
