package caddyoauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/reqinfo"
	"github.com/caddyserver/caddy/v2"
)

// RFC 7591 §3.2.2 error codes.
const (
	errInvalidRedirectURI          = "invalid_redirect_uri"
	errInvalidClientMetadata       = "invalid_client_metadata"
	errInvalidSoftwareStatement    = "invalid_software_statement"
	errUnapprovedSoftwareStatement = "unapproved_software_statement"
)

// registrationRequest is the client metadata a registrant sends (RFC 7591
// §2): only what a registrant may choose. Fields an operator decides
// (metadata, resources, lifetimes, assertion subjects) are not here, so
// they cannot be set by registering. Unknown fields are ignored (§2: "MUST
// ignore any client metadata sent by the client that it does not
// understand").
type registrationRequest struct {
	RedirectURIs                       []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod            string          `json:"token_endpoint_auth_method"`
	GrantTypes                         []string        `json:"grant_types"`
	ResponseTypes                      []string        `json:"response_types"`
	ClientName                         string          `json:"client_name"`
	Scope                              string          `json:"scope"`
	JWKS                               json.RawMessage `json:"jwks"`
	JWKSURI                            string          `json:"jwks_uri"`
	PostLogoutRedirectURIs             []string        `json:"post_logout_redirect_uris"`
	IDTokenSignedResponseAlg           string          `json:"id_token_signed_response_alg"`
	DPoPBoundAccessTokens              bool            `json:"dpop_bound_access_tokens"`
	RequirePushedAuthorizationRequests bool            `json:"require_pushed_authorization_requests"`
	SoftwareStatement                  json.RawMessage `json:"software_statement"`

	// RFC 7592 §2.2: an update names the client, may repeat its secret,
	// and must not send the server-made fields.
	ClientID              string          `json:"client_id"`
	ClientSecret          string          `json:"client_secret"`
	RegistrationToken     json.RawMessage `json:"registration_access_token"`
	RegistrationClientURI json.RawMessage `json:"registration_client_uri"`
	ClientIDIssuedAt      json.RawMessage `json:"client_id_issued_at"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at"`
}

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3).
type registrationResponse struct {
	ClientID                           string          `json:"client_id"`
	ClientSecret                       string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt                   int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt              *int64          `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken            string          `json:"registration_access_token,omitempty"`
	RegistrationClientURI              string          `json:"registration_client_uri"`
	ClientName                         string          `json:"client_name,omitempty"`
	RedirectURIs                       []string        `json:"redirect_uris,omitempty"`
	GrantTypes                         []string        `json:"grant_types"`
	ResponseTypes                      []string        `json:"response_types"`
	TokenEndpointAuthMethod            string          `json:"token_endpoint_auth_method"`
	Scope                              string          `json:"scope"`
	JWKS                               json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                            string          `json:"jwks_uri,omitempty"`
	PostLogoutRedirectURIs             []string        `json:"post_logout_redirect_uris,omitempty"`
	IDTokenSignedResponseAlg           string          `json:"id_token_signed_response_alg,omitempty"`
	DPoPBoundAccessTokens              bool            `json:"dpop_bound_access_tokens,omitempty"`
	RequirePushedAuthorizationRequests bool            `json:"require_pushed_authorization_requests,omitempty"`
}

// serveRegistration answers {prefix}/register and {prefix}/register/{id}.
func (s *Server) serveRegistration(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, s.registerPath)
	if rest == "" {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "registration takes POST (RFC 7591 §3.1)"})
			return
		}
		s.register(w, r)
		return
	}
	id := strings.TrimPrefix(rest, "/")
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
		s.manageRegistration(w, r, id)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeOAuthError(w, &oauthError{Status: http.StatusMethodNotAllowed, Code: errInvalidRequest, Description: "client configuration takes GET, PUT or DELETE (RFC 7592 §2)"})
	}
}

// bearerToken returns the Bearer token of the Authorization header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// writeBearerError answers a missing or refused token (RFC 6750 §3).
func writeBearerError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	noStore(h)
	challenge := `Bearer realm="oauth"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	h.Set("WWW-Authenticate", challenge)
	writeJSON(w, status, &oauthError{Code: code, Description: desc})
}

// tokenID is the hex SHA-256 of a registration token, what the store
// keeps instead of it.
func tokenID(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	rc := s.app.Registration
	if !rc.Open {
		tok, ok := bearerToken(r)
		if !ok {
			writeBearerError(w, http.StatusUnauthorized, "", "registration needs an initial access token (RFC 7591 §3)")
			return
		}
		if _, err := s.app.registrations.InitialAccessToken(r.Context(), tokenID(tok)); err != nil {
			if errors.Is(err, ErrNotFound) {
				writeBearerError(w, http.StatusUnauthorized, "invalid_token", "the initial access token is unknown or expired")
			} else {
				writeOAuthError(w, &oauthError{Status: http.StatusServiceUnavailable, Code: errServerError, Description: "the store is unavailable"})
			}
			return
		}
	}
	req, oerr := readRegistration(r)
	if oerr == nil {
		oerr = s.checkRegistrationPolicy(&req)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	cs := s.registeredSettings(&req)
	addr := reqinfo.ClientIP(r)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ok, err := s.app.registrations.TakeSlot(r.Context(), addr, rc.MaxPerAddress, time.Duration(rc.Window))
	if err != nil {
		writeOAuthError(w, &oauthError{Status: http.StatusServiceUnavailable, Code: errServerError, Description: "the store is unavailable"})
		return
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(time.Duration(rc.Window)/time.Second)))
		writeOAuthError(w, &oauthError{Status: http.StatusTooManyRequests, Code: errInvalidRequest, Description: "too many registrations from this address; try again later"})
		return
	}
	regToken, err := random256()
	if err != nil {
		writeOAuthError(w, &oauthError{Status: http.StatusInternalServerError, Code: errServerError})
		return
	}
	v, err := clientsAPI{s.app}.createClient(r.Context(), cs, tokenID(regToken), "client registered dynamically (RFC 7591)")
	if err != nil {
		writeOAuthError(w, registrationError(err))
		return
	}
	resp := s.registrationResponse(v)
	resp.RegistrationAccessToken = regToken
	s.app.audit.emit(r, eventClientRegistered, map[string]any{"client_id": v.ID})
	noStore(w.Header())
	w.Header().Set("Location", resp.RegistrationClientURI)
	writeJSON(w, http.StatusCreated, resp)
}

// readRegistration decodes a registration or update body.
func readRegistration(r *http.Request) (registrationRequest, *oauthError) {
	var req registrationRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return req, badRequest(errInvalidClientMetadata, "the client metadata is a JSON object sent as application/json (RFC 7591 §3.1)")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	if err := dec.Decode(&req); err != nil {
		return req, badRequest(errInvalidClientMetadata, "the client metadata is not a JSON object of the fields of RFC 7591 §2: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, badRequest(errInvalidClientMetadata, errTrailingData.Error())
	}
	return req, nil
}

// checkRegistrationPolicy refuses what the registration policy does not
// allow, with RFC 7591 §3.2.2's codes, and sets the RFC 7591 §2 defaults.
func (s *Server) checkRegistrationPolicy(req *registrationRequest) *oauthError {
	rc := s.app.Registration
	if len(req.SoftwareStatement) > 0 && string(req.SoftwareStatement) != "null" {
		var st string
		if json.Unmarshal(req.SoftwareStatement, &st) != nil || strings.Count(st, ".") != 2 {
			return badRequest(errInvalidSoftwareStatement, "software_statement must be a JWT (RFC 7591 §2.3)")
		}
		return badRequest(errUnapprovedSoftwareStatement, "this server approves no software statements; register without one")
	}
	if len(req.GrantTypes) == 0 {
		req.GrantTypes = []string{GrantAuthorizationCode}
	}
	for _, g := range req.GrantTypes {
		if !slices.Contains(rc.GrantTypes, g) {
			return badRequest(errInvalidClientMetadata, "grant_types: "+g+" may not be registered here (allowed: "+strings.Join(rc.GrantTypes, " ")+")")
		}
	}
	if len(req.ResponseTypes) == 0 && slices.Contains(req.GrantTypes, GrantAuthorizationCode) {
		req.ResponseTypes = []string{"code"}
	}
	for _, rt := range req.ResponseTypes {
		if rt != "code" {
			return badRequest(errInvalidClientMetadata, "response_types: only code is supported")
		}
	}
	if slices.Contains(req.ResponseTypes, "code") != slices.Contains(req.GrantTypes, GrantAuthorizationCode) {
		return badRequest(errInvalidClientMetadata, "response_types code goes with grant_types authorization_code (RFC 7591 §2.1)")
	}
	for _, sc := range strings.Fields(req.Scope) {
		if !slices.Contains(rc.Scopes, sc) {
			return badRequest(errInvalidClientMetadata, "scope: "+sc+" may not be registered here")
		}
	}
	if req.TokenEndpointAuthMethod == "" {
		req.TokenEndpointAuthMethod = authBasic
	}
	switch req.TokenEndpointAuthMethod {
	case authNone:
		if !rc.AllowPublicClients {
			return badRequest(errInvalidClientMetadata, "token_endpoint_auth_method: public clients (none) may not register here")
		}
	case authBasic, authPost, authPrivateKeyJWT:
	default:
		return badRequest(errInvalidClientMetadata, "token_endpoint_auth_method: "+req.TokenEndpointAuthMethod+" cannot be registered (supported: client_secret_basic, client_secret_post, private_key_jwt, none)")
	}
	for _, u := range append(slices.Clone(req.RedirectURIs), req.PostLogoutRedirectURIs...) {
		if err := rc.redirectURIAllowed(u); err != nil {
			return badRequest(errInvalidRedirectURI, err.Error())
		}
	}
	return nil
}

// registeredSettings is the ClientSettings of a checked registration.
func (s *Server) registeredSettings(req *registrationRequest) ClientSettings {
	cs := ClientSettings{
		Name:                               req.ClientName,
		GrantTypes:                         req.GrantTypes,
		RedirectURIs:                       req.RedirectURIs,
		Scopes:                             strings.Fields(req.Scope),
		AuthMethod:                         req.TokenEndpointAuthMethod,
		JWKS:                               req.JWKS,
		JWKSURI:                            req.JWKSURI,
		PostLogoutRedirectURIs:             req.PostLogoutRedirectURIs,
		IDTokenSignedResponseAlg:           req.IDTokenSignedResponseAlg,
		DPoPBoundAccessTokens:              req.DPoPBoundAccessTokens,
		RequirePushedAuthorizationRequests: req.RequirePushedAuthorizationRequests,
	}
	if len(cs.Scopes) == 0 {
		cs.Scopes = slices.Clone(s.app.Registration.Scopes)
	}
	if cs.AuthMethod == authNone {
		cs.Public = true
	}
	return cs
}

// registrationError turns an error of the client code into RFC 7591
// §3.2.2's: what Client.provision refuses is the registrant's metadata.
func registrationError(err error) *oauthError {
	var ae caddy.APIError
	if !errors.As(err, &ae) {
		return &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
	}
	msg := ae.Err.Error()
	switch {
	case ae.HTTPStatus == http.StatusBadRequest && strings.Contains(msg, "redirect_uris:"):
		return badRequest(errInvalidRedirectURI, msg)
	case ae.HTTPStatus == http.StatusBadRequest:
		return badRequest(errInvalidClientMetadata, msg)
	case ae.HTTPStatus == http.StatusServiceUnavailable:
		return &oauthError{Status: http.StatusServiceUnavailable, Code: errServerError, Description: "the store is unavailable"}
	}
	return &oauthError{Status: http.StatusInternalServerError, Code: errServerError}
}

// registrationResponse is v as RFC 7591 §3.2.1 shows it.
func (s *Server) registrationResponse(v clientView) registrationResponse {
	resp := registrationResponse{
		ClientID: v.ID, ClientSecret: v.ClientSecret, RegistrationClientURI: s.registerURL + "/" + v.ID,
		ClientName: v.Name, RedirectURIs: v.RedirectURIs, GrantTypes: v.GrantTypes, ResponseTypes: []string{},
		TokenEndpointAuthMethod: v.AuthMethod, Scope: v.Scope, JWKS: v.JWKS, JWKSURI: v.JWKSURI,
		PostLogoutRedirectURIs: v.PostLogoutRedirectURIs, IDTokenSignedResponseAlg: v.IDTokenSignedResponseAlg,
		DPoPBoundAccessTokens: v.DPoPBoundAccessTokens, RequirePushedAuthorizationRequests: v.RequirePushedAuthorizationRequests,
	}
	if v.Created != nil {
		resp.ClientIDIssuedAt = v.Created.Unix()
	}
	if v.ClientSecret != "" {
		var never int64 // RFC 7591 §3.2.1: 0, the secret does not expire
		resp.ClientSecretExpiresAt = &never
	}
	if slices.Contains(v.GrantTypes, GrantAuthorizationCode) {
		resp.ResponseTypes = []string{"code"}
	}
	return resp
}

// manageRegistration is RFC 7592: a registered client reads, updates or
// deletes itself with its registration access token.
func (s *Server) manageRegistration(w http.ResponseWriter, r *http.Request, id string) {
	tok, ok := bearerToken(r)
	if !ok {
		writeBearerError(w, http.StatusUnauthorized, "", "the registration access token is required (RFC 7592 §2)")
		return
	}
	api := clientsAPI{s.app}
	var sc *storedClient
	if clientIDPattern.MatchString(id) {
		if _, static := s.app.clients[id]; !static {
			got, err := s.app.registry.store.Get(r.Context(), id)
			if err != nil && !errors.Is(err, ErrNotFound) {
				writeOAuthError(w, &oauthError{Status: http.StatusServiceUnavailable, Code: errServerError, Description: "the store is unavailable"})
				return
			}
			sc = got
		}
	}
	// RFC 7592 §2.1: an unknown client and a wrong token both answer 401,
	// so the answer does not say which client ids exist.
	want := tokenID(tok)
	if sc == nil || sc.RegistrationTokenHash == "" || subtle.ConstantTimeCompare([]byte(want), []byte(sc.RegistrationTokenHash)) != 1 {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "the registration access token is not valid for this client")
		return
	}
	switch r.Method {
	case http.MethodGet:
		c, err := api.validate(sc)
		if err != nil {
			writeOAuthError(w, registrationError(err))
			return
		}
		noStore(w.Header())
		writeJSON(w, http.StatusOK, s.registrationResponse(api.view(c, "store", time.Time{}, sc)))
	case http.MethodDelete:
		if err := api.deleteClient(r.Context(), id, "dynamically registered client deleted itself (RFC 7592)"); err != nil {
			writeOAuthError(w, registrationError(err))
			return
		}
		s.app.audit.emit(r, eventClientRevoked, map[string]any{"client_id": id, "reason": "deleted itself (RFC 7592)"})
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		s.updateRegistration(w, r, api, sc)
	}
}

// updateRegistration is RFC 7592 §2.2: the body replaces the client's
// metadata; omitted fields take their defaults.
func (s *Server) updateRegistration(w http.ResponseWriter, r *http.Request, api clientsAPI, sc *storedClient) {
	req, oerr := readRegistration(r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	switch {
	case req.ClientID != sc.ID:
		writeOAuthError(w, badRequest(errInvalidClientMetadata, "client_id must be the client's (RFC 7592 §2.2)"))
		return
	case len(req.RegistrationToken) > 0 || len(req.RegistrationClientURI) > 0 || len(req.ClientIDIssuedAt) > 0 || len(req.ClientSecretExpiresAt) > 0:
		writeOAuthError(w, badRequest(errInvalidClientMetadata, "registration_access_token, registration_client_uri, client_id_issued_at and client_secret_expires_at are the server's; leave them out (RFC 7592 §2.2)"))
		return
	case req.ClientSecret != "" && (sc.SecretHash == "" || subtle.ConstantTimeCompare([]byte(HashSecret(req.ClientSecret)), []byte(sc.SecretHash)) != 1):
		writeOAuthError(w, badRequest(errInvalidClientMetadata, "client_secret does not match the client's (RFC 7592 §2.2)"))
		return
	}
	if oerr := s.checkRegistrationPolicy(&req); oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	cs := s.registeredSettings(&req)
	cs.ID = sc.ID
	v, err := api.updateClient(r.Context(), sc, cs, "dynamically registered client updated itself (RFC 7592)")
	if err != nil {
		writeOAuthError(w, registrationError(err))
		return
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, s.registrationResponse(v))
}
