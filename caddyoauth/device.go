package caddyoauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"time"
)

// Known devices: a password-guessing flood must not crowd out the people
// who sign in from a browser they signed in from before (issue 15 item 7).
// After each successful sign-in the browser gets a device cookie
// (__Host-, HttpOnly, Secure, SameSite=Lax), as in OWASP's "Slow Down
// Online Guessing Attacks with Device Cookies". A sign-in that carries a
// device cookie valid for the account it signs into may take one of the
// slow-hash slots reserved for known devices (client_secret.go); every
// other sign-in, and every client secret, competes for the general slots
// only, so a flood of unknown requests cannot fill the reserved ones.
//
// The cookie is nonce‖issued‖HMAC-SHA256(k, "known-device v1"‖username‖
// nonce‖issued), with k derived from the account's own password hash:
//   - it names no account: the server recomputes the MAC for the username
//     the form names, so a cookie set for bob gives no priority to a
//     sign-in as alice, and a forged or altered cookie none at all;
//   - no server secret has to be kept or shared: every instance of a
//     cluster that knows the user checks it, and a password change ends
//     every device cookie of the account;
//   - it expires deviceCookieTTL after the sign-in that set it (the issue
//     time is signed, so it cannot be moved).
//
// Such a sign-in is also exempt from the account's failure count
// (throttle.go), so guesses at a person's password from elsewhere do not
// lock them out of their own browser (OWASP's per-device lockout); the
// address's count still applies. The priority itself is bounded: one
// sign-in at a time per device cookie (more at once are treated as
// unknown), and a cookie that failed deviceFailuresStop times in
// throttleWindow gives no priority any more (loginThrottle.claimDevice);
// its holder then meets the account's count like everyone else. A stolen
// cookie thus buys deviceFailuresStop guesses, one at a time.

const (
	deviceCookie       = "__Host-oauth_device"
	deviceCookieTTL    = 30 * 24 * time.Hour
	deviceFailuresStop = 3
	deviceNonceSize    = 16
	devicePayloadSize  = deviceNonceSize + 8
)

// deviceToken is a device cookie as the browser sent it, not yet checked.
type deviceToken struct {
	payload []byte // nonce ‖ issued (Unix seconds, big-endian)
	mac     []byte
}

// id names the cookie in the throttle's counts.
func (d *deviceToken) id() string { return string(d.payload[:deviceNonceSize]) }

// readDeviceCookie returns the request's device cookie if it is well
// formed, else nil.
func readDeviceCookie(r *http.Request) *deviceToken {
	c, err := r.Cookie(deviceCookie)
	if err != nil || len(c.Value) > 128 {
		return nil
	}
	p, m, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || len(payload) != devicePayloadSize || len(mac) != sha256.Size {
		return nil
	}
	return &deviceToken{payload: payload, mac: mac}
}

// signedFor reports whether the cookie was set at a sign-in to u, no
// longer than deviceCookieTTL before now, comparing in constant time.
func (d *deviceToken) signedFor(u *User, now time.Time) bool {
	if u == nil || len(u.password.hash) == 0 {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(d.payload[deviceNonceSize:])), 0)
	if now.Sub(issued) >= deviceCookieTTL || issued.After(now.Add(time.Minute)) {
		return false
	}
	return hmac.Equal(d.mac, deviceMAC(u, d.payload))
}

// deviceMAC signs payload for u with a key derived from u's password hash.
func deviceMAC(u *User, payload []byte) []byte {
	kh := sha256.New()
	kh.Write([]byte("caddyoauth known-device key v1\x00"))
	kh.Write(u.password.hash)
	m := hmac.New(sha256.New, kh.Sum(nil))
	m.Write([]byte("known-device v1\x00"))
	m.Write([]byte(u.Username))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}

// newDeviceCookie makes a device cookie value for u, issued at now.
func newDeviceCookie(u *User, now time.Time) (string, error) {
	payload := make([]byte, devicePayloadSize)
	if _, err := rand.Read(payload[:deviceNonceSize]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(payload[deviceNonceSize:], uint64(now.Unix()))
	return base64.RawURLEncoding.EncodeToString(payload) + "." +
		base64.RawURLEncoding.EncodeToString(deviceMAC(u, payload)), nil
}

// claimKnownDevice returns the request's device cookie if it was set at a
// sign-in to username and loginThrottle.claimDevice grants it this
// attempt; else nil. The caller must releaseDevice a non-nil answer. It
// looks the user up only when the request carries a well-formed cookie;
// a store that does not answer costs the priority, nothing else.
func (s *Server) claimKnownDevice(r *http.Request, username string) *deviceToken {
	dev := readDeviceCookie(r)
	if dev == nil {
		return nil
	}
	u, ok, err := s.app.directory.lookup(r.Context(), username)
	if err != nil || !ok || !dev.signedFor(u, s.app.clock()) || !s.app.throttle.claimDevice(dev.id()) {
		return nil
	}
	return dev
}

// setDeviceCookie gives the browser a fresh device cookie for u after a
// successful sign-in. Failing to make one only costs the priority.
func (s *Server) setDeviceCookie(w http.ResponseWriter, u *User) {
	v, err := newDeviceCookie(u, s.app.clock())
	if err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: deviceCookie, Value: v, Path: "/", MaxAge: int(deviceCookieTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
