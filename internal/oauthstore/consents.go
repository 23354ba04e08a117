package oauthstore

import (
	"context"
	"strings"
)

// Remembered consents: when a person ticks "remember", the approved scope
// set is kept per person and client, and a later request of the same
// client for those scopes or fewer skips the consent page.

// Consent is a person's remembered approval of a client's scopes.
type Consent struct {
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	Given    int64    `json:"given"`
}

// Consents keeps remembered consents.
type Consents struct{ owner }

// Get returns user's consent for client, or ErrNotFound.
func (o Consents) Get(ctx context.Context, user, client string) (*Consent, error) {
	c := new(Consent)
	if err := o.getJSON(ctx, consentKey(user, client), "consent", c, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Put remembers user's approval of scopes for client, given now.
func (o Consents) Put(ctx context.Context, user, client string, scopes []string) error {
	return o.putJSON(ctx, consentKey(user, client), Consent{ClientID: client, Scopes: scopes, Given: o.now().Unix()}, 0)
}

// Delete forgets user's consent for client.
func (o Consents) Delete(ctx context.Context, user, client string) error {
	return o.kv.Delete(ctx, consentKey(user, client))
}

// List returns user's consents; entries that vanish or are corrupt while
// listing are left out.
func (o Consents) List(ctx context.Context, user string) ([]Consent, error) {
	prefix := consentsPrefix(user)
	keys, err := o.kv.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []Consent
	for _, k := range keys {
		if strings.Contains(k[len(prefix):], "/") {
			continue
		}
		var c Consent
		if o.getJSON(ctx, k, "consent", &c, nil) == nil {
			out = append(out, c)
		}
	}
	return out, nil
}
