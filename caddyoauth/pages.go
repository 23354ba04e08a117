package caddyoauth

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// The pages a person sees: login, consent, account (remembered consents
// and sign-out), signed-out and error. Each is layout.html plus its own
// file, embedded; a templates directory may replace any of the files.
// Pages work without JavaScript and carry a strict Content-Security-Policy.

//go:embed templates/*.html
var embeddedTemplates embed.FS

// pageNames are the pages, each a template file besides layout.html.
var pageNames = []string{"login", "consent", "account", "signedout", "error", "signup"}

// pageSet holds one parsed template per page.
type pageSet map[string]*template.Template

// loadPages parses the embedded templates, each file overridden by a file
// of the same name in dir when dir is set.
func loadPages(dir string) (pageSet, error) {
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		return embeddedTemplates.ReadFile("templates/" + name)
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%q is not a readable directory", dir)
		}
	}
	layout, err := read("layout.html")
	if err != nil {
		return nil, err
	}
	set := make(pageSet, len(pageNames))
	for _, name := range pageNames {
		body, err := read(name + ".html")
		if err != nil {
			return nil, err
		}
		t, err := template.New(name).Parse(string(layout))
		if err == nil {
			t, err = t.Parse(string(body))
		}
		if err != nil {
			return nil, fmt.Errorf("%s.html: %v", name, err)
		}
		if t.Lookup("layout") == nil || t.Lookup("content") == nil {
			return nil, fmt.Errorf("%s.html: needs the templates \"layout\" and \"content\"", name)
		}
		set[name] = t
	}
	return set, nil
}

// pageData is what every page template receives, plus its own fields.
type pageData struct {
	Nonce string
}

// renderPage writes a page with the security headers every page carries.
// formTargets are the origins a form on the page may end up at (its own
// origin is always allowed): the client's redirect URI after consent,
// since browsers apply form-action to the redirects that follow a POST.
func (s *Server) renderPage(w http.ResponseWriter, status int, name string, data any, nonce string, formTargets ...string) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.logger.Error("rendering page failed", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP(nonce, formTargets))
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageCSP allows nothing but the page's own inline style (by nonce), forms
// posting to itself (and to formTargets), and no framing at all.
func pageCSP(nonce string, formTargets []string) string {
	formAction := "'self'"
	for _, t := range formTargets {
		if src := cspSource(t); src != "" {
			formAction += " " + src
		}
	}
	return "default-src 'none'; style-src 'nonce-" + nonce + "'; img-src 'self'; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// cspSource turns a redirect URI into a CSP source expression: its origin
// for http(s), its scheme for a native app's private-use scheme.
func cspSource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "http", "https":
		if strings.ContainsAny(u.Host, " ;,'\"") {
			return ""
		}
		return u.Scheme + "://" + u.Host
	default:
		if strings.ContainsAny(u.Scheme, " ;,'\"") {
			return ""
		}
		return u.Scheme + ":"
	}
}

// newNonce returns a fresh CSP nonce.
func newNonce() string {
	n, err := randomID()
	if err != nil {
		return "unavailable"
	}
	return n
}

// errorPageData is the data of error.html.
type errorPageData struct {
	pageData
	Title   string
	Message string
}

// errorPage shows an error to the person instead of redirecting, for
// requests whose client or redirect URI could not be trusted (RFC 6749
// §4.1.2.1: "MUST NOT automatically redirect the user-agent to the invalid
// redirection URI").
func (s *Server) errorPage(w http.ResponseWriter, status int, title, message string) {
	nonce := newNonce()
	s.renderPage(w, status, "error", errorPageData{pageData{nonce}, title, message}, nonce)
}
