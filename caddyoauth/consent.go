package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
	"go.uber.org/zap"
)

// The consent page ({prefix}/consent) and remembered consents: when a
// person ticks "remember", the approved scopes are kept
// (oauthstore.Consents), and a later request of the same client for those
// scopes or fewer skips the page. The account page lists and withdraws
// them.

// consentPageData is the data of consent.html.
type consentPageData struct {
	pageData
	Action, Request, CSRF string
	ClientName, ClientID  string
	UserName              string
	Scopes                []scopeLine
	Resources             []string // where the tokens will be used (RFC 8707 §2.1)
	RedirectOrigin        string
	CanRemember           bool
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, req *authzRequest, sess *session) {
	secret, ok := s.formSecret(w, r)
	if !ok {
		return
	}
	nonce := newNonce()
	data := consentPageData{
		pageData: pageData{nonce}, Action: s.consentPath, Request: req.query, CSRF: csrfToken(secret, formConsent),
		ClientName: clientDisplayName(req.client), ClientID: req.client.ID, UserName: sess.user.displayName(),
		Scopes: s.describeScopes(req.scopes), Resources: req.resources, RedirectOrigin: cspSource(req.redirectURI),
		CanRemember: !req.client.Public,
	}
	s.renderPage(w, http.StatusOK, "consent", data, nonce, req.redirectURI)
}

// serveConsent handles the consent form (POST {prefix}/consent).
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	form, req, ok := s.readRequestForm(w, r, formConsent)
	if !ok {
		return
	}
	sess, err := s.currentSession(r.Context(), r)
	if err != nil {
		s.unavailableRedirect(w, r, req, http.StatusSeeOther, err)
		return
	}
	if sess == nil {
		s.showLogin(w, r, req, http.StatusOK, "", "Your session has ended. Please sign in again.")
		return
	}
	switch form.Get("decision") {
	case "allow":
	case "deny":
		consents.Inc(consentDenied)
		s.logger.Info("consent denied", zap.String("user", sess.User), zap.String("client_id", req.client.ID))
		http.Redirect(w, r, s.errorRedirect(req, redirectError(errAccessDenied, "the resource owner denied the request")), http.StatusSeeOther)
		return
	default:
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form did not say whether you allow the request.")
		return
	}
	if form.Get("remember") == "yes" && !req.client.Public {
		if err := s.app.rec.Consents.Put(r.Context(), sess.User, req.client.ID, req.scopes); err != nil && !errors.Is(err, ErrNotFound) {
			s.logger.Warn("remembering a consent failed", zap.Error(err))
		}
	}
	consents.Inc(consentGranted)
	s.logger.Info("consent given", zap.String("user", sess.User), zap.String("client_id", req.client.ID))
	s.sendCode(w, r, req, sess, http.StatusSeeOther)
}

// consented reports whether user has a remembered consent covering scopes
// for client.
func (s *Server) consented(ctx context.Context, user, client string, scopes []string) (bool, error) {
	a := s.app
	rec, err := a.rec.Consents.Get(ctx, user, client)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !oauthjwt.HasAll(rec.Scopes, scopes) {
		return false, nil
	}
	// A consent given before the client's tokens were revoked (or before
	// it was deleted and made again under its id) no longer counts.
	revoked, err := a.registry.revokedSince(ctx, client, rec.Given)
	return err == nil && !revoked, err
}

// withdrawConsent forgets user's approval for client and ends what the
// approvals gave the client: its refresh tokens for the person and their
// access tokens. Withdrawing is how a person takes access back.
func (s *Server) withdrawConsent(ctx context.Context, user, client string) error {
	a := s.app
	if err := a.rec.Consents.Delete(ctx, user, client); err != nil {
		return err
	}
	ids, err := a.rec.Families.OfUser(ctx, user, client)
	if err != nil {
		return err
	}
	for _, id := range ids {
		a.revokeFamily(ctx, id)
		if err := a.rec.Families.Unindex(ctx, user, client, id); err != nil {
			return err
		}
	}
	return nil
}

// consentLine is a remembered consent as the account page shows it.
type consentLine struct {
	ClientID   string
	ClientName string
	Scopes     []string
}

// listConsents returns the applications that hold something of user's: a
// remembered consent, or refresh tokens (a public client's consent is
// never remembered, but its refresh tokens still are access to take back).
func (s *Server) listConsents(ctx context.Context, user string) ([]consentLine, error) {
	a := s.app
	consents, err := a.rec.Consents.List(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []consentLine
	add := func(clientID string, scopes []string) {
		for i := range out {
			if out[i].ClientID == clientID {
				for _, sc := range scopes {
					if !slices.Contains(out[i].Scopes, sc) {
						out[i].Scopes = append(out[i].Scopes, sc)
					}
				}
				return
			}
		}
		name := clientID
		if c, _, ok, _ := a.registry.lookup(ctx, clientID); ok && c.Name != "" {
			name = c.Name
		}
		out = append(out, consentLine{ClientID: clientID, ClientName: name, Scopes: slices.Clone(scopes)})
	}
	for _, c := range consents {
		add(c.ClientID, c.Scopes)
	}
	ids, err := a.rec.Families.OfUser(ctx, user, "")
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if fam, err := a.rec.Families.Get(ctx, id); err == nil && fam.User == user {
			add(fam.ClientID, fam.Scopes)
		}
	}
	return out, nil
}
