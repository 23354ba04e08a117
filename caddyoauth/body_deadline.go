package caddyoauth

import (
	"errors"
	"net/http"
	"os"
	"time"
)

// formReadTimeout is the longest the token, introspection, revocation,
// login, consent and sign-up endpoints wait for a form body (at most 64
// KiB): a client that trickles it in more slowly is cut off, so slow
// clients cannot hold connections and goroutines open indefinitely
// whatever the server's own timeouts. A variable for the tests.
var formReadTimeout = 10 * time.Second

// bodyDeadline bounds the reading of r's body and returns the function
// that lifts the bound once the body is read (the answer is not bounded
// by it). Where the connection does not support deadlines (a recorder in
// tests) it does nothing.
func bodyDeadline(w http.ResponseWriter) (lift func()) {
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(formReadTimeout)) != nil {
		return func() {}
	}
	return func() { _ = rc.SetReadDeadline(time.Time{}) }
}

// isTimeout reports whether err is a read that ran past its deadline.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
