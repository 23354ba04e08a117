package caddyoauth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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

// withdrawConsent forgets user's approval for client and ends what the
// approvals gave the client: its refresh tokens for the person and their
// access tokens. Withdrawing is how a person takes access back.
func (a *App) withdrawConsent(ctx context.Context, user, client string) error {
	if err := a.store.Delete(ctx, consentKey(user, client)); err != nil {
		return err
	}
	return a.revokeUserFamilies(ctx, user, client)
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
func (a *App) listConsents(ctx context.Context, user string) ([]consentLine, error) {
	prefix := "consents/" + storeSafeID(user) + "/"
	keys, err := a.store.List(ctx, prefix)
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
		if c, _, ok, _ := a.lookupClient(ctx, clientID); ok && c.Name != "" {
			name = c.Name
		}
		out = append(out, consentLine{ClientID: clientID, ClientName: name, Scopes: slices.Clone(scopes)})
	}
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
		add(rec.ClientID, rec.Scopes)
	}
	famPrefix := "user-families/" + storeSafeID(user) + "/"
	famKeys, err := a.store.List(ctx, famPrefix)
	if err != nil {
		return nil, err
	}
	for _, k := range famKeys {
		id := k[strings.LastIndexByte(k, '/')+1:]
		if fam, err := a.loadFamily(ctx, id); err == nil && fam != nil && fam.User == user {
			add(fam.ClientID, fam.Scopes)
		}
	}
	return out, nil
}
