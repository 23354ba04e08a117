package caddyoauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/oauthstore"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// People on the admin API:
//
//	GET    /oauth/users                    everyone who may sign in (never a hash)
//	POST   /oauth/users                    create a store-kept account:
//	                                       {"username","password","name","email"}
//	GET    /oauth/users/{name}             one person
//	POST   /oauth/users/{name}/disable     no more sign-ins; sessions, codes,
//	                                       refresh tokens and userinfo refused
//	POST   /oauth/users/{name}/enable      undo disable
//	POST   /oauth/users/{name}/password    {"password":"…"}: a new password;
//	                                       sessions started before end
//	DELETE /oauth/users/{name}/sessions    end every sign-in session
//	POST   /oauth/users/{name}/revoke      end what the person gave
//	                                       applications (refresh-token families
//	                                       and their last access tokens,
//	                                       remembered consents)
//
// Accounts from the configuration are listed and can have their grants
// revoked, but are changed in the configuration (409). Passwords follow the
// sign-up page's rule and are kept as bcrypt hashes.

// userView is a person as the admin API shows them.
type userView struct {
	Username          string     `json:"username"`
	Name              string     `json:"name,omitempty"`
	Email             string     `json:"email,omitempty"`
	Source            string     `json:"source"` // caddyfile, json or store
	Disabled          bool       `json:"disabled"`
	Created           *time.Time `json:"created,omitempty"`
	SessionsNotBefore *time.Time `json:"sessions_not_before,omitempty"`
}

func storedUserView(su *oauthstore.StoredUser) userView {
	v := userView{Username: su.Username, Name: su.Name, Email: su.Email, Source: "store", Disabled: su.Disabled}
	if su.Created != 0 {
		t := time.Unix(su.Created, 0).UTC()
		v.Created = &t
	}
	if su.SessionsNotBefore != 0 {
		t := time.Unix(su.SessionsNotBefore, 0).UTC()
		v.SessionsNotBefore = &t
	}
	return v
}

type newUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
	Email    string `json:"email"`
}

type passwordRequest struct {
	Password string `json:"password"`
}

func handleUsers(w http.ResponseWriter, r *http.Request) error {
	a, err := runningApp()
	if err != nil {
		return err
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/oauth/users"), "/")
	if rest == "" {
		switch r.Method {
		case http.MethodGet:
			return a.listUsers(w, r)
		case http.MethodPost:
			return a.createUser(w, r)
		}
		return methodNotAllowed(w, "GET, POST")
	}
	user, action, _ := strings.Cut(rest, "/")
	if !usernamePattern.MatchString(user) {
		return apiErr(http.StatusNotFound, "no user %q", user)
	}
	method := map[string]string{"": http.MethodGet, "disable": http.MethodPost, "enable": http.MethodPost,
		"password": http.MethodPost, "sessions": http.MethodDelete, "revoke": http.MethodPost}
	want, ok := method[action]
	if !ok {
		return apiErr(http.StatusNotFound, "no such endpoint")
	}
	if r.Method != want {
		return methodNotAllowed(w, want)
	}
	switch action {
	case "":
		return a.getUser(w, r, user)
	case "revoke":
		return a.revokeUser(w, r, user)
	}
	return a.changeUser(w, r, user, action)
}

// configSource is where the configured accounts come from.
func (a *App) configSource() string { return clientsAPI{a}.configSource() }

func (a *App) listUsers(w http.ResponseWriter, r *http.Request) error {
	out := []userView{}
	for _, u := range a.users {
		out = append(out, userView{Username: u.Username, Name: u.Name, Email: u.Email, Source: a.configSource()})
	}
	stored, err := a.directory.store.List(r.Context())
	if err != nil {
		return storeErr(err)
	}
	for _, su := range stored {
		if _, static := a.users[su.Username]; !static {
			out = append(out, storedUserView(su))
		}
	}
	slices.SortFunc(out, func(x, y userView) int { return strings.Compare(x.Username, y.Username) })
	return writeAdminJSON(w, http.StatusOK, out)
}

func (a *App) getUser(w http.ResponseWriter, r *http.Request, user string) error {
	if u, ok := a.users[user]; ok {
		return writeAdminJSON(w, http.StatusOK, userView{Username: u.Username, Name: u.Name, Email: u.Email, Source: a.configSource()})
	}
	su, err := a.storedUser(r.Context(), user)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, storedUserView(su))
}

// storedUser reads a store-kept account, refusing configured ones (409).
func (a *App) storedUser(ctx context.Context, user string) (*oauthstore.StoredUser, error) {
	if _, ok := a.users[user]; ok {
		return nil, apiErr(http.StatusConflict, "user %q is defined in the configuration (%s); change it there", user, a.configSource())
	}
	su, err := a.directory.store.Get(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, "no user %q", user)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return su, nil
}

// minPasswordLength is the sign-up page's rule, or its default.
func (a *App) minPasswordLength() int {
	if a.Signup != nil && a.Signup.MinPasswordLength > 0 {
		return a.Signup.MinPasswordLength
	}
	return defaultMinPasswordLength
}

// hashNewPassword makes the bcrypt hash of an accepted password.
func hashNewPassword(password string) (string, error) {
	if !acquireSlowHashSlot() {
		return "", apiErr(http.StatusServiceUnavailable, "the server is busy hashing passwords; try again")
	}
	defer releaseSlowHashSlot()
	h, err := bcrypt.GenerateFromPassword([]byte(password), signupBcryptCost)
	return string(h), err
}

func (a *App) createUser(w http.ResponseWriter, r *http.Request) error {
	var req newUserRequest
	if err := decodeJSONObject(r.Body, &req); err != nil {
		return apiErr(http.StatusBadRequest, "body: %v (fields: username, password, name, email)", err)
	}
	if msg := checkAccount(a.minPasswordLength(), req.Username, req.Name, req.Email, req.Password); msg != "" {
		return apiErr(http.StatusBadRequest, "%s", msg)
	}
	hash, err := hashNewPassword(req.Password)
	if err != nil {
		return err
	}
	u := &User{Username: req.Username, Name: req.Name, Email: req.Email, PasswordHash: hash}
	switch err := a.directory.create(r.Context(), u); {
	case errors.Is(err, oauthstore.ErrUsernameTaken):
		return apiErr(http.StatusConflict, "user %q exists", req.Username)
	case errors.Is(err, oauthstore.ErrEmailTaken):
		return apiErr(http.StatusConflict, "an account with e-mail %q exists", req.Email)
	case err != nil:
		return storeErr(err)
	}
	a.logger.Info("user created through the admin API", zap.String("user", req.Username))
	su, err := a.directory.store.Get(r.Context(), req.Username)
	if err != nil {
		return storeErr(err)
	}
	w.Header().Set("Location", "/oauth/users/"+req.Username)
	return writeAdminJSON(w, http.StatusCreated, storedUserView(su))
}

// changeUser is disable, enable, password and sessions.
func (a *App) changeUser(w http.ResponseWriter, r *http.Request, user, action string) error {
	ctx := r.Context()
	su, err := a.storedUser(ctx, user)
	if err != nil {
		return err
	}
	// Sessions started in this second end too: the mark is the next one.
	endSessions := a.clock().Unix() + 1
	switch action {
	case "disable":
		su.Disabled, su.SessionsNotBefore = true, endSessions
	case "enable":
		su.Disabled = false
	case "sessions":
		su.SessionsNotBefore = endSessions
	case "password":
		var req passwordRequest
		if err := decodeJSONObject(r.Body, &req); err != nil {
			return apiErr(http.StatusBadRequest, "body: %v (fields: password)", err)
		}
		if msg := checkAccount(a.minPasswordLength(), su.Username, su.Name, su.Email, req.Password); msg != "" {
			return apiErr(http.StatusBadRequest, "%s", msg)
		}
		hash, err := hashNewPassword(req.Password)
		if err != nil {
			return err
		}
		su.PasswordHash, su.SessionsNotBefore = hash, endSessions
	}
	if err := a.directory.store.Put(ctx, su); err != nil {
		return storeErr(err)
	}
	if action == "disable" {
		if _, err := a.revokeUserGrants(ctx, user); err != nil {
			return storeErr(err)
		}
	}
	a.logger.Info("user changed through the admin API", zap.String("user", user), zap.String("change", action))
	return writeAdminJSON(w, http.StatusOK, storedUserView(su))
}

type userRevokeResult struct {
	User              string `json:"user"`
	FamiliesRevoked   int    `json:"refresh_token_families_revoked"`
	ConsentsWithdrawn int    `json:"consents_withdrawn"`
}

func (a *App) revokeUser(w http.ResponseWriter, r *http.Request, user string) error {
	res, err := a.revokeUserGrants(r.Context(), user)
	if err != nil {
		return storeErr(err)
	}
	a.logger.Info("a person's grants revoked through the admin API", zap.String("user", user), zap.Int("families", res.FamiliesRevoked))
	a.audit.emit(r, eventConsentWithdrawn, map[string]any{"user": user, "reason": "admin API"})
	return writeAdminJSON(w, http.StatusOK, res)
}

// revokeUserGrants ends user's refresh-token families (and each family's
// last access token) and remembered consents.
func (a *App) revokeUserGrants(ctx context.Context, user string) (userRevokeResult, error) {
	res := userRevokeResult{User: user}
	ids, err := a.rec.Families.OfUser(ctx, user, "")
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		fam, err := a.rec.Families.Get(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return res, err
		}
		if fam == nil {
			continue
		}
		if fam.User == user {
			a.revokeFamily(ctx, id)
			res.FamiliesRevoked++
		}
		if err := a.rec.Families.Unindex(ctx, user, fam.ClientID, id); err != nil {
			return res, err
		}
	}
	consents, err := a.rec.Consents.List(ctx, user)
	if err != nil {
		return res, err
	}
	for _, c := range consents {
		if err := a.rec.Consents.Delete(ctx, user, c.ClientID); err != nil {
			return res, err
		}
		res.ConsentsWithdrawn++
	}
	return res, nil
}
