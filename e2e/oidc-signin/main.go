// Command oidc-signin signs a person in through the gateway of
// Caddyfile.example with OpenID Connect, as any Go web app would with
// github.com/coreos/go-oidc, and prints who signed in.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	home, _ := os.UserHomeDir()
	issuer := flag.String("issuer", "https://localhost:8443", "the gateway's issuer")
	caFile := flag.String("ca", filepath.Join(home, ".local/share/caddy/pki/authorities/local/root.crt"), "Caddy's local root certificate")
	flag.Parse()

	// The example's certificate comes from Caddy's local CA: trust it.
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx := oidc.ClientContext(context.Background(), client)

	// Discovery: {issuer}/.well-known/openid-configuration.
	provider, err := oidc.NewProvider(ctx, *issuer)
	if err != nil {
		log.Fatal(err)
	}
	conf := oauth2.Config{
		ClientID:     "notes-web",
		ClientSecret: "notes-web-demo-secret-not-for-production",
		Endpoint:     provider.Endpoint(),
		RedirectURL:  *issuer + "/demo/callback",
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
	}
	verifier := oauth2.GenerateVerifier()
	state, nonce := rand.Text(), rand.Text()
	fmt.Println("Open this address, sign in as alice (password alice-demo-password) and allow:")
	fmt.Println(conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	fmt.Println("Then paste the address of the page you land on (/demo/callback?code=…):")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	back, err := url.Parse(strings.TrimSpace(line))
	if err != nil {
		log.Fatal(err)
	}
	if back.Query().Get("state") != state {
		log.Fatal("state does not match: not the answer to this request")
	}

	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, rawID)
	if err != nil {
		log.Fatal(err)
	}
	if idToken.Nonce != nonce {
		log.Fatal("nonce does not match")
	}
	var claims struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := idToken.Claims(&claims); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Signed in: %s (%s, %s)\n", idToken.Subject, claims.Name, claims.Email)
}
