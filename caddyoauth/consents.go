package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/caddyapigw/gateway/internal/oauthjwt"
)

// Remembered consents: when a person ticks "remember", the approved scope
// set is kept at consents/<user>/<client>, and a later request of the same
// client for those scopes or fewer skips the consent page. The account
// page lists them and withdraws them.

func consentKey(user, client string) string {
	return "consents/" + storeSafeID(user) + "/" + storeSafeID(client)
}

type consentRecord struct {
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	Given    int64    `json:"given"`
}

// consented reports whether user has a remembered consent covering scopes
// for client.
func (a *App) consented(ctx context.Context, user, client string, scopes []string) (bool, error) {
	b, err := a.store.Get(ctx, consentKey(user, client))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var rec consentRecord
	if json.Unmarshal(b, &rec) != nil {
		a.logger.Warn("corrupt consent entry in the store; treating it as absent")
		return false, nil
	}
	if !oauthjwt.HasAll(rec.Scopes, scopes) {
		return false, nil
	}
	// A consent given before the client's tokens were revoked (or before
	// it was deleted and made again under its id) no longer counts.
	revoked, err := a.clientRevokedSince(ctx, client, rec.Given)
	return err == nil && !revoked, err
}

// rememberConsent keeps user's approval of scopes for client.
func (a *App) rememberConsent(ctx context.Context, user, client string, scopes []string) error {
	b, _ := json.Marshal(consentRecord{ClientID: client, Scopes: scopes, Given: a.clock().Unix()})
	return a.store.Put(ctx, consentKey(user, client), b, 0)
}

// withdrawConsent forgets user's approval for client.
func (a *App) withdrawConsent(ctx context.Context, user, client string) error {
	return a.store.Delete(ctx, consentKey(user, client))
}

// consentLine is a remembered consent as the account page shows it.
type consentLine struct {
	ClientID   string
	ClientName string
	Scopes     []string
}

// listConsents returns user's remembered consents.
func (a *App) listConsents(ctx context.Context, user string) ([]consentLine, error) {
	prefix := "consents/" + storeSafeID(user) + "/"
	keys, err := a.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []consentLine
	for _, k := range keys {
		if strings.Contains(k[len(prefix):], "/") {
			continue
		}
		b, err := a.store.Get(ctx, k)
		if err != nil {
			continue
		}
		var rec consentRecord
		if json.Unmarshal(b, &rec) != nil {
			continue
		}
		name := rec.ClientID
		if c, _, ok, _ := a.lookupClient(ctx, rec.ClientID); ok && c.Name != "" {
			name = c.Name
		}
		out = append(out, consentLine{ClientID: rec.ClientID, ClientName: name, Scopes: rec.Scopes})
	}
	return out, nil
}
