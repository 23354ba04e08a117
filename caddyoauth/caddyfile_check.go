package caddyoauth

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// The checks below run while the `oauth` option is parsed, so that a
// mistake is reported with its file and line ("…, at Caddyfile:12"), at
// `caddy adapt` or `caddy validate`, rather than at provision after
// Caddy's chain of "loading … provision oauth: …". They need nothing but
// the text: no file is read, no network reached, no placeholder
// replaced (a secret such as {env.SECRET} is left to provision). Each
// refuses only what provision refuses too, in provision's words, by
// calling provision's own checks where they are separate functions;
// provision keeps every check, for JSON configs.

// blockLines remembers where a block of the option starts and where each
// of its options was last written, so that a check of the whole block
// names the line of the option at fault.
type blockLines struct {
	start caddyfile.Token
	opts  map[string]caddyfile.Token
}

// newBlockLines starts the lines of the block whose first token the
// dispenser is on.
func newBlockLines(d *caddyfile.Dispenser) *blockLines {
	return &blockLines{start: d.Token(), opts: make(map[string]caddyfile.Token)}
}

// note records the option the dispenser is on.
func (b *blockLines) note(d *caddyfile.Dispenser) { b.opts[d.Val()] = d.Token() }

// fieldOptions maps the fields provision names in its errors to the
// Caddyfile options that set them, where the two differ.
var fieldOptions = map[string]string{
	"assertion_issuer, assertion_subjects": "assertion_subjects assertion_issuer",
	"claims":                               "claim",
	"scope_descriptions":                   "scope_description",
	"refresh_token_ttl":                    "refresh_token_ttl refresh_token_max_ttl",
	"session_ttl":                          "session_ttl session_max_ttl",
}

// at returns the line an error of provision is about: the option that
// sets the field the error starts with ("redirect_uris: …"), else the
// block's first line.
func (b *blockLines) at(msg string) caddyfile.Token {
	field, _, _ := strings.Cut(msg, ":")
	opts := []string{field}
	if o, ok := fieldOptions[field]; ok {
		opts = strings.Fields(o)
	}
	for _, o := range opts {
		if tok, ok := b.opts[o]; ok {
			return tok
		}
	}
	return b.start
}

// errAt is d.Errf at tok: the message ends in ", at <file>:<line>" as
// every Caddyfile error does, for a line the dispenser has already left.
func errAt(tok caddyfile.Token, format string, args ...any) error {
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.Errf(format, args...)
}

// optionLines are the lines of the whole `oauth` option.
type optionLines struct {
	top     *blockLines
	clients map[string]*blockLines // by client_id
	users   map[string]*blockLines // by username, the last block of a name
}

// newOptionLines starts the lines of the option, the dispenser on its name.
func newOptionLines(d *caddyfile.Dispenser) *optionLines {
	return &optionLines{top: newBlockLines(d), clients: make(map[string]*blockLines), users: make(map[string]*blockLines)}
}

// addClient records a client block, refusing a client_id given before.
func (o *optionLines) addClient(c *Client, b *blockLines) error {
	if _, dup := o.clients[c.ID]; dup {
		return errAt(b.start, "client %q: client_id: defined twice", c.ID)
	}
	o.clients[c.ID] = b
	return nil
}

// addUser records a user block; a repeated username is refused with the
// other users' checks, by provisionUsers.
func (o *optionLines) addUser(u *User, b *blockLines) { o.users[u.Username] = b }

// blame puts err, an error of provision, at the line it is about: in the
// block of the user it names (`user "alice": password_hash: …`), or at
// the top level of the option.
func (o *optionLines) blame(err error) error {
	msg, b := err.Error(), o.top
	if rest, ok := strings.CutPrefix(msg, "user "); ok {
		if q, qerr := strconv.QuotedPrefix(rest); qerr == nil {
			name, _ := strconv.Unquote(q)
			if ub, ok := o.users[name]; ok {
				b, msg = ub, strings.TrimPrefix(rest[len(q):], ": ")
			}
		}
	}
	return errAt(b.at(msg), "%v", err)
}

// checkCaddyfileOption checks the top-level option opt just read, the
// dispenser still on its line. The issuer is checked with the whole
// option, which must have one.
func (a *App) checkCaddyfileOption(d *caddyfile.Dispenser, opt string) error {
	var err error
	switch opt {
	case "access_token_ttl":
		if accessTTLOutOfRange(a.AccessTokenTTL) {
			err = fmt.Errorf("access_token_ttl: %s is outside 1m..24h", time.Duration(a.AccessTokenTTL))
		}
	case "refresh_token_reuse_grace":
		if a.RefreshTokenReuseGrace != nil {
			err = checkReuseGrace(*a.RefreshTokenReuseGrace)
		}
	case "leeway":
		if a.Leeway < 0 || a.Leeway > caddy.Duration(maxLeeway) {
			err = fmt.Errorf("leeway: %s is outside 0..5m", time.Duration(a.Leeway))
		}
	case "scope_description":
		for sc := range a.ScopeDescriptions {
			if !oauthjwt.ValidScopeToken(sc) {
				err = fmt.Errorf("scope_descriptions: %q is not a valid scope token (RFC 6749 §3.3)", sc)
			}
		}
	}
	if err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// accessTTLOutOfRange reports whether an access_token_ttl just read from
// the Caddyfile lies outside 1m..24h. Written there, 0s is refused too:
// in JSON 0 means "unset, the default", but a Caddyfile that says 0s
// means something it would not get (issue 15).
func accessTTLOutOfRange(v caddy.Duration) bool {
	return v < caddy.Duration(minAccessTokenTTL) || v > caddy.Duration(maxAccessTokenTTL)
}

// checkCaddyfile checks the signing key's algorithm and rotation, the
// dispenser on the line that sets them.
func (k *SigningKeyConfig) checkCaddyfile(d *caddyfile.Dispenser) error {
	if k.Algorithm != "" {
		if err := oauthjwt.CheckAlg(k.Algorithm); err != nil {
			return d.Errf("signing_key: %v", err)
		}
	}
	if err := k.checkRotateEvery(); err != nil {
		return d.Errf("signing_key: %v", err)
	}
	return nil
}

// checkCaddyfileBlock checks what needs the whole option: an issuer is
// given, and provisionUsers (users, refresh-token and session lifetimes,
// scope texts, sign-up) passes on a copy of what was read.
func (a *App) checkCaddyfileBlock(o *optionLines) error {
	if err := validateIssuer(a.Issuer); err != nil {
		return errAt(o.top.at("issuer"), "issuer: %v", err)
	}
	probe := App{
		Issuer:             a.Issuer,
		RefreshTokenTTL:    a.RefreshTokenTTL,
		RefreshTokenMaxTTL: a.RefreshTokenMaxTTL,
		SessionTTL:         a.SessionTTL,
		SessionMaxTTL:      a.SessionMaxTTL,
		ScopeDescriptions:  a.ScopeDescriptions,
		UserinfoScope:      a.UserinfoScope,
	}
	if a.Signup != nil {
		s := *a.Signup
		probe.Signup = &s
	}
	for _, u := range a.Users {
		cp := *u
		probe.Users = append(probe.Users, &cp)
	}
	if err := probe.provisionPersonSettings(); err != nil {
		return o.blame(err)
	}
	if err := probe.provisionUsers(); err != nil {
		return o.blame(err)
	}
	return nil
}

// checkCaddyfileOption checks the client option opt just read, the
// dispenser still on its line. An empty value is unset, as at provision.
func (c *Client) checkCaddyfileOption(d *caddyfile.Dispenser, opt string) error {
	var err error
	switch opt {
	case "secret_hash":
		if c.SecretHash != "" {
			if _, e := parseSecretHash(c.SecretHash); e != nil {
				err = fmt.Errorf("secret_hash: %v", e)
			}
		}
	case "secret":
		// With a placeholder the length is known only at provision.
		if c.Secret != "" && !strings.Contains(c.Secret, "{") && len(c.Secret) < minSecretLen {
			err = fmt.Errorf("secret: shorter than %d characters; generate one with `caddy oauth-secret`", minSecretLen)
		}
	case "scopes":
		for _, s := range c.Scopes {
			if !oauthjwt.ValidScopeToken(s) {
				err = fmt.Errorf("scopes: %q is not a valid scope token (RFC 6749 §3.3)", s)
				break
			}
		}
	case "redirect_uris":
		for i, u := range c.RedirectURIs {
			if e := validateRedirectURI(u); e != nil {
				err = fmt.Errorf("redirect_uris: %v", e)
				break
			}
			if slices.Contains(c.RedirectURIs[:i], u) {
				err = fmt.Errorf("redirect_uris: %q listed twice", u)
				break
			}
		}
	case "post_logout_redirect_uris":
		for i, u := range c.PostLogoutRedirectURIs {
			if e := validateRedirectURI(u); e != nil {
				err = fmt.Errorf("post_logout_redirect_uris: %v", e)
				break
			}
			if slices.Contains(c.PostLogoutRedirectURIs[:i], u) {
				err = fmt.Errorf("post_logout_redirect_uris: %q listed twice", u)
				break
			}
		}
	case "resources":
		err = checkClientResources(c.Resources)
	case "metadata":
		for k := range c.Metadata {
			if !metadataKeyPattern.MatchString(k) {
				err = fmt.Errorf("metadata: key %q must be 1 to 64 of A-Z a-z 0-9 _ . -", k)
			}
		}
	case "access_token_ttl":
		if accessTTLOutOfRange(c.AccessTokenTTL) {
			err = fmt.Errorf("access_token_ttl: %s is outside 1m..24h", time.Duration(c.AccessTokenTTL))
		}
	case "id_token_signed_response_alg":
		// Whether it is the signing key's is known at provision.
		if c.IDTokenSignedResponseAlg != "" && !slices.Contains(oauthjwt.SupportedAlgs, c.IDTokenSignedResponseAlg) {
			err = fmt.Errorf("id_token_signed_response_alg: %q is not one of %v", c.IDTokenSignedResponseAlg, oauthjwt.SupportedAlgs)
		}
	case "tls_client_auth_subject_dn", "tls_client_auth_san_dns", "tls_client_auth_san_uri", "tls_client_auth_san_ip", "tls_client_auth_san_email":
		for _, f := range c.tlsClientAuthNames() {
			if f[0] == opt {
				_, err = newCertMatch(f[0], f[1])
			}
		}
	case "token_endpoint_auth_method":
		if c.AuthMethod != "" && !slices.Contains(tokenAuthMethods, c.AuthMethod) {
			err = fmt.Errorf("token_endpoint_auth_method: %q is not one of %v", c.AuthMethod, tokenAuthMethods)
		}
	}
	if err != nil {
		return d.Errf("client %q: %v", c.ID, err)
	}
	return nil
}

// checkCaddyfileBlock checks what needs the whole client block: the
// client_id, and provision's checks of the grant types against the rest
// of the registration (checkGrants, provisionJWTBearer, provisionMTLS),
// run on a copy.
// A block without scopes is refused too (`caddy oauth-secret --client`
// prints a scopes line to edit).
func (c *Client) checkCaddyfileBlock(b *blockLines) error {
	fail := func(err error) error { return errAt(b.at(err.Error()), "client %q: %v", c.ID, err) }
	if !clientIDPattern.MatchString(c.ID) {
		return fail(errors.New("client_id: must be 1 to 128 of A-Z a-z 0-9 . _ ~ : -"))
	}
	if len(c.Scopes) == 0 {
		return fail(errNoScopes)
	}
	probe := *c
	if err := probe.checkGrants(); err != nil {
		return fail(err)
	}
	if err := probe.provisionJWTBearer(); err != nil {
		return fail(err)
	}
	hasKeys := len(c.JWKS) > 0 || c.JWKSFile != "" || c.JWKSURI != ""
	if err := probe.provisionMTLS(c.Secret != "" || c.SecretHash != "", hasKeys); err != nil {
		return fail(err)
	}
	return nil
}
