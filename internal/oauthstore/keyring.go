package oauthstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StoredKeyring is an issuer's signing keyring as kept in the store.
type StoredKeyring struct {
	Active string      `json:"active"`
	Keys   []StoredKey `json:"keys"`
}

// StoredKey is one signing key of a keyring.
type StoredKey struct {
	ID         string    `json:"kid"`
	Algorithm  string    `json:"alg"`
	PrivateKey string    `json:"private_key_pem"`
	Created    time.Time `json:"created"`
	// RetireAt is when a key that no longer signs may be dropped: the
	// moment the last token it signed has expired.
	RetireAt time.Time `json:"retire_at,omitzero"`
}

// Keyrings keeps issuers' signing keyrings. Unlike other records, a corrupt
// keyring is an error, not ErrNotFound: replacing it silently would make
// every token it signed fail, so the caller refuses to start instead.
type Keyrings struct{ owner }

// Get returns issuer's keyring, ErrNotFound if it has none, or an error
// naming the key when it is corrupt.
func (o Keyrings) Get(ctx context.Context, issuer string) (*StoredKeyring, error) {
	key := KeyringKey(issuer)
	data, err := o.kv.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("loading keyring from the store: %v", err)
	}
	var sk StoredKeyring
	if err := json.Unmarshal(data, &sk); err != nil {
		return nil, fmt.Errorf("keyring in the store at %s is corrupt: %v", key, err)
	}
	o.remember(ctx, issuer, &sk)
	return &sk, nil
}

// Put saves issuer's keyring.
func (o Keyrings) Put(ctx context.Context, issuer string, sk *StoredKeyring) error {
	data, err := json.MarshalIndent(sk, "", "\t")
	if err != nil {
		return err
	}
	if err := o.kv.Put(ctx, KeyringKey(issuer), data, 0); err != nil {
		return fmt.Errorf("saving keyring to the store: %v", err)
	}
	o.remember(ctx, issuer, sk)
	return nil
}

// Lock takes the cluster-wide lock under which issuer's keyring is created
// or rotated, and returns the function that releases it.
func (o Keyrings) Lock(ctx context.Context, issuer string) (func(), error) {
	unlock, err := Lock(ctx, o.kv, keyringLockName(issuer))
	if err != nil {
		return nil, fmt.Errorf("locking the keyring: %v", err)
	}
	return unlock, nil
}
