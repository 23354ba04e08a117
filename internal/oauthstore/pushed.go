package oauthstore

import (
	"context"
	"errors"
	"time"
)

// PushedRequests keeps pushed authorization requests (RFC 9126) from the
// PAR endpoint until the authorization endpoint uses them: short-lived,
// and taken when a code is issued for one, so a request_uri yields one
// code at most on every instance sharing the store.
type PushedRequests struct{ owner }

// PushedRequest is one pushed authorization request.
type PushedRequest struct {
	ClientID string `json:"client_id"`
	// Query is the authorization request's parameters, form-encoded, as
	// the authorization endpoint validates them.
	Query string `json:"query"`
}

// Put keeps p under id for ttl.
func (o PushedRequests) Put(ctx context.Context, id string, p *PushedRequest, ttl time.Duration) error {
	return o.putJSON(ctx, pushedKey(id), p, ttl)
}

// Get returns the request under id, or ErrNotFound.
func (o PushedRequests) Get(ctx context.Context, id string) (*PushedRequest, error) {
	var p PushedRequest
	if err := o.getJSON(ctx, pushedKey(id), "pushed authorization request", &p, func() bool { return p.ClientID != "" }); err != nil {
		return nil, err
	}
	return &p, nil
}

// Take removes the request under id and reports whether it was there:
// of concurrent Takes, on any instance, one gets true.
func (o PushedRequests) Take(ctx context.Context, id string) (bool, error) {
	_, err := o.kv.Take(ctx, pushedKey(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}
