package e2e

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoginFloodKnownDevices: issue 15 item 7. Failed sign-ins from 128
// addresses (127.0.0.2 to 127.0.0.129: the example trusts no proxy, so
// the flood comes from real source addresses) keep the general slow-hash
// slots full, while 16 people whose sessions have ended sign in again from
// browsers they signed in from before (their device cookie kept, nothing
// else). Every one of them must get in: the flood can take only the
// general slots, the people's device cookies give them the reserved ones.
// In the second run the people's account has been locked first by
// guesses at its password from other addresses: it stays locked for
// other browsers, not for theirs. Bounded: the flood stops when the
// people are done, at 20 s, or at 150 requests per address.
func TestLoginFloodKnownDevices(t *testing.T) {
	needBinary(t)
	t.Run("made-up usernames", func(t *testing.T) { loginFlood(t, false) })
	t.Run("account locked by guesses", func(t *testing.T) { loginFlood(t, true) })
}

// loginFlood runs the flood, after locking the demo user's account when
// lock is set.
func loginFlood(t *testing.T, lock bool) {
	p := newPorts(t)
	g := startGateway(t, p, exampleCaddyfile(t, p), "")
	const people, attackers = 16, 128

	// Each person signs in once before the flood; the browser keeps only
	// the device cookie (if the gateway set one) for the second sign-in.
	devices := make([]*http.Cookie, people)
	for i := range devices {
		pp := newPerson(t)
		_, challenge := pkcePair()
		pp.code(g, challenge)
		for _, c := range pp.jar.Cookies(mustURL(t, g.url("/"))) {
			if c.Name == "__Host-oauth_device" {
				devices[i] = c
			}
		}
	}
	known := 0
	for _, d := range devices {
		if d != nil {
			known++
		}
	}

	if lock {
		// 10 guesses at once, from 10 addresses: the account's stop.
		var lw sync.WaitGroup
		for i := range 10 {
			lw.Go(func() {
				c := clientFrom(g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(200+i))})
				if page, err := loginPage(context.Background(), c, g); err == nil {
					_, _ = postLogin(context.Background(), c, g, page, demoUser, "wrong-password")
				}
			})
		}
		lw.Wait()
		c := clientFrom(g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 210)})
		page, err := loginPage(context.Background(), c, g)
		if err != nil {
			t.Fatal(err)
		}
		if status, err := postLogin(context.Background(), c, g, page, demoUser, demoPassword); err != nil || status != http.StatusTooManyRequests {
			t.Fatalf("the right password from an unknown browser after 10 failures: %d %v, want 429 (account locked)", status, err)
		}
	}

	// The flood: each attacker, from its own address, posts wrong
	// passwords for made-up usernames as fast as it is answered.
	floodCtx, stopFlood := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopFlood()
	var flood counter
	var floodSent atomic.Int64
	var wg sync.WaitGroup
	for i := range attackers {
		wg.Go(func() {
			addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
			c := clientFrom(g, addr)
			page, err := loginPage(floodCtx, c, g)
			if err != nil {
				flood.add("setup error")
				return
			}
			for n := 0; n < 150 && floodCtx.Err() == nil; n++ {
				status, err := postLogin(floodCtx, c, g, page, fmt.Sprintf("guess-%d-%d", i, n), "wrong-password")
				if err != nil {
					if floodCtx.Err() == nil {
						flood.add("error")
					}
					continue
				}
				floodSent.Add(1)
				flood.add(fmt.Sprint(status))
			}
		})
	}
	// Let the flood fill the slots, then the people sign in, one every
	// 250 ms, each from 127.0.0.1 with a fresh cookie jar.
	for floodSent.Load() < attackers && floodCtx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	var real counter
	var pw sync.WaitGroup
	for i := range people {
		time.Sleep(250 * time.Millisecond)
		pw.Go(func() {
			jar, _ := cookiejar.New(nil)
			if devices[i] != nil {
				jar.SetCookies(mustURL(t, g.url("/")), []*http.Cookie{{Name: devices[i].Name, Value: devices[i].Value, Path: "/", Secure: true}})
			}
			c := *g.client
			c.Jar = jar
			page, err := loginPage(floodCtx, &c, g)
			if err != nil {
				real.add("error: " + err.Error())
				return
			}
			status, err := postLogin(floodCtx, &c, g, page, demoUser, demoPassword)
			if err != nil {
				real.add("error: " + err.Error())
				return
			}
			real.add(fmt.Sprint(status))
		})
	}
	pw.Wait()
	stopFlood()
	wg.Wait()

	got, floodGot := real.snapshot(), flood.snapshot()
	t.Logf("login flood (%s): %d attackers sent %d failed sign-ins (%v); %d real sign-ins with device cookies for %d: %v (503: %d of %d)",
		t.Name(), attackers, floodSent.Load(), floodGot, people, known, got, got["503"], people)
	if floodGot["503"] == 0 {
		t.Fatalf("the flood never found the slow-hash slots full (%v): the test did not test anything", floodGot)
	}
	if known != people {
		t.Errorf("%d of %d sign-ins set a device cookie", known, people)
	}
	if got["303"] != people {
		t.Errorf("real sign-ins during the flood: %v, want all %d to get in (303)", got, people)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// clientFrom is a client of g whose connections come from addr, with a
// cookie jar of its own.
func clientFrom(g *gateway, addr *net.TCPAddr) *http.Client {
	tr := g.client.Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: addr, Timeout: 5 * time.Second}
	tr.DialContext = d.DialContext
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// loginPage opens the SPA's authorization request and returns the login
// page's hidden fields (the CSRF token and the request).
func loginPage(ctx context.Context, c *http.Client, g *gateway) (url.Values, error) {
	q := url.Values{
		"response_type": {"code"}, "client_id": {spaClient}, "redirect_uri": {g.url("/demo/callback")},
		"scope": {"notes:read"}, "state": {"s1"},
		"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url("/oauth2/authorize?"+q.Encode()), nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `name="password"`) {
		return nil, fmt.Errorf("no login page: %d", resp.StatusCode)
	}
	form := url.Values{}
	for _, m := range formField.FindAllStringSubmatch(string(b), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	return form, nil
}

// postLogin posts the login form with username and password.
func postLogin(ctx context.Context, c *http.Client, g *gateway, page url.Values, username, password string) (int, error) {
	form := url.Values{}
	for k, v := range page {
		form[k] = v
	}
	form.Set("username", username)
	form.Set("password", password)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url("/oauth2/login"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
