package caddyscope

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxDocumentSize bounds what is read of a metadata document, a JWKS or an
// introspection response.
const maxDocumentSize = 1 << 20

// newIssuerClient makes the HTTP client for an issuer's endpoints: its
// timeout, its trusted CAs, no redirects (a key or an introspection answer
// comes from the URL configured or discovered, nowhere else), and bodies
// bounded in size.
func newIssuerClient(r resolvedIssuer) (*http.Client, error) {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: r.caPool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport:     boundedBodies{tr},
		Timeout:       r.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// call sends req, made with the issuer's context, within the configured
// timeout and asking for JSON, and returns the body of a 200 answer. Any
// other status is a *statusError, its body unread. Discovery and
// introspection both reach the issuer through it.
func (ri *remoteIssuer) call(req *http.Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), ri.cfg.timeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/json")
	resp, err := ri.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{status: resp.StatusCode}
	}
	return io.ReadAll(resp.Body)
}

// statusError is an issuer's answer with a status other than 200 OK.
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.status) }

// boundedBodies fails the read of a response body past maxDocumentSize.
type boundedBodies struct{ rt http.RoundTripper }

func (b boundedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &boundedBody{rc: resp.Body, left: maxDocumentSize}
	}
	return resp, err
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

var errBodyTooLarge = fmt.Errorf("response larger than %d bytes", maxDocumentSize)

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }
