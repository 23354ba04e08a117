package caddyoauth

import (
	"net/http"

	"go.uber.org/zap"
)

// The account page ({prefix}/account, also at {prefix}/logout): who is
// signed in, the consents they remembered (each with a withdraw button)
// and a sign-out button. Sign-out and withdrawal are POSTs with CSRF
// tokens; a GET never changes anything.

// accountPageData is the data of account.html.
type accountPageData struct {
	pageData
	UserName, Message        string
	Consents                 []consentLine
	WithdrawAction           string
	WithdrawCSRF             string
	LogoutAction, LogoutCSRF string
}

// serveAccount handles GET {prefix}/account and {prefix}/logout, and the
// withdraw form (POST {prefix}/account).
func (s *Server) serveAccount(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		s.withdraw(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use the buttons on the account page.")
		return
	}
	s.showAccount(w, r, "")
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, message string) {
	sess, err := s.currentSession(r.Context(), r)
	if err != nil {
		s.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Please try again shortly.")
		return
	}
	nonce := newNonce()
	if sess == nil {
		s.renderPage(w, http.StatusOK, "signedout", pageData{nonce}, nonce)
		return
	}
	consents, err := s.listConsents(r.Context(), sess.User)
	if err != nil {
		s.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Please try again shortly.")
		return
	}
	secret, ok := s.formSecret(w, r)
	if !ok {
		return
	}
	s.renderPage(w, http.StatusOK, "account", accountPageData{
		pageData: pageData{nonce}, UserName: sess.user.displayName(), Message: message, Consents: consents,
		WithdrawAction: s.accountPath, WithdrawCSRF: csrfToken(secret, formWithdraw),
		LogoutAction: s.logoutPath, LogoutCSRF: csrfToken(secret, formLogout),
	}, nonce)
}

// withdraw forgets a remembered consent: the next authorization request of
// that client shows the consent page again.
func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) {
	form, ok := s.readPageForm(w, r, formWithdraw)
	if !ok {
		return
	}
	sess, err := s.currentSession(r.Context(), r)
	if err != nil || sess == nil {
		s.showAccount(w, r, "")
		return
	}
	client := form.Get("client_id")
	if !clientIDPattern.MatchString(client) {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form did not name an application.")
		return
	}
	if err := s.withdrawConsent(r.Context(), sess.User, client); err != nil {
		s.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Please try again shortly.")
		return
	}
	consents.Inc(consentWithdrawn)
	s.logger.Info("consent withdrawn", zap.String("user", sess.User), zap.String("client_id", client))
	s.app.audit.emit(r, eventConsentWithdrawn, map[string]any{"user": sess.User, "client_id": client})
	http.Redirect(w, r, s.accountPath, http.StatusSeeOther)
}

// serveLogout shows the account page on GET and signs out on POST.
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.serveAccount(w, r)
		return
	}
	if _, ok := s.readPageForm(w, r, formLogout); !ok {
		return
	}
	if err := s.endSession(r.Context(), w, r); err != nil {
		s.logger.Warn("deleting a session from the store failed; its cookie is cleared", zap.Error(err))
	}
	nonce := newNonce()
	s.renderPage(w, http.StatusOK, "signedout", pageData{nonce}, nonce)
}
