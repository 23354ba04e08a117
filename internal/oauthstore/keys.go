package oauthstore

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strconv"
	"strings"

	"github.com/caddyserver/certmagic"
)

// The key schema: every key this package reads or writes is made by one
// function below, and no key is made by slicing another. A secret (a code,
// a refresh token, a session id) is never a key: its SHA-256 is. Ids that
// may hold characters outside the key alphabet go through SafeID.
//
// The strings are a storage format: they must not change, or a gateway
// upgraded in place loses what it kept.
//
//	codes/<sha256 hex>                         authorization code (60 s)
//	codes-used/<sha256 hex>                    what a redeemed code issued
//	refresh-tokens/<sha256 hex>                a refresh token → its family
//	refresh-used/<sha256 hex>                  a refresh token's one use
//	refresh-families/<family>                  a refresh-token family
//	refresh-revoked/<family>                   a family's revocation
//	user-families/<user>/<client>/<family>     index: a person's families
//	sessions/<sha256 hex>                      a login session
//	consents/<user>/<client>                   a remembered consent
//	users/<lower-case username>                a signed-up user
//	user-emails/<sha256 hex of lower-case e-mail>  an e-mail address's claim
//	clients/<client>                           a client registered at run time
//	client-revocations/<client>                "tokens before t are revoked"
//	client-assertions/<client>/<sha256 hex>    a seen assertion jti (RFC 7523)
//	revoked-tokens/<exp>.<jti>                 a revoked access token
//	revoked-tokens-version                     stamp: the list changed
//	issuers/<issuer name>/keyring.json         an issuer's signing keyring
//	issuers/<name of issuer#id-token-rs256>/keyring.json  its RS256 ID-token keyring
//	locks/<name>                               a cluster-wide lock
//	store-id                                   the store's marker (keyring_held.go)
//
// Backends keep entries of their own beside these, which are no Store
// keys: CaddyStore's storage locks (caddy.go), RedisStore's once-only
// markers, which live for seconds ("{<key>}:once:<token>", onceKey in
// redis.go).

func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func codeKey(code string) string       { return "codes/" + digest(code) }
func codeUsedKey(code string) string   { return "codes-used/" + digest(code) }
func refreshKey(token string) string   { return "refresh-tokens/" + digest(token) }
func refreshUsedKey(tok string) string { return "refresh-used/" + digest(tok) }
func familyKey(id string) string       { return "refresh-families/" + id }
func familyRevokedKey(id string) string {
	return "refresh-revoked/" + id
}

// familyAccessPrefix holds a family's access tokens, one entry each, so
// concurrent refreshes never overwrite each other's (refresh.go AddAccess).
func familyAccessPrefix(id string) string   { return "refresh-access/" + id + "/" }
func familyAccessKey(id, jti string) string { return familyAccessPrefix(id) + SafeID(jti) }

// userFamiliesPrefix is where a person's families are indexed, for every
// client when client is "".
func userFamiliesPrefix(user, client string) string {
	p := "user-families/" + SafeID(user) + "/"
	if client != "" {
		p += SafeID(client) + "/"
	}
	return p
}

func userFamilyKey(user, client, id string) string { return userFamiliesPrefix(user, client) + id }
func sessionKey(id string) string                  { return "sessions/" + digest(id) }
func consentsPrefix(user string) string            { return "consents/" + SafeID(user) + "/" }
func consentKey(user, client string) string        { return consentsPrefix(user) + SafeID(client) }
func userKey(username string) string               { return "users/" + SafeID(strings.ToLower(username)) }
func emailKey(email string) string                 { return "user-emails/" + digest(strings.ToLower(email)) }

const clientsPrefix = "clients/"

func clientKey(id string) string           { return clientsPrefix + SafeID(id) }
func clientRevocationKey(id string) string { return "client-revocations/" + SafeID(id) }
func proofKey(jkt, jti string) string {
	return "dpop-proofs/" + digest(jkt+"\x00"+jti)
}
func pushedKey(id string) string   { return "pushed-requests/" + digest(id) }
func secretKey(name string) string { return "secrets/" + SafeID(name) }
func assertionKey(client, jti string) string {
	return "client-assertions/" + SafeID(client) + "/" + digest(jti)
}

const (
	tokenRevocationsPrefix = "revoked-tokens/"
	revocationStampKey     = "revoked-tokens-version"
)

func tokenRevocationKey(jti string, exp int64) string {
	return tokenRevocationsPrefix + strconv.FormatInt(exp, 10) + "." + SafeID(jti)
}

// parseTokenRevocationKey reads a key tokenRevocationKey made; the jti
// comes back in its SafeID form, which is what lookups use too.
func parseTokenRevocationKey(key string) (jti string, exp int64, ok bool) {
	rest, found := strings.CutPrefix(key, tokenRevocationsPrefix)
	if !found {
		return "", 0, false
	}
	expText, jti, found := strings.Cut(rest, ".")
	if !found || jti == "" {
		return "", 0, false
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	return jti, exp, err == nil
}

// issuerName is a readable form of the issuer plus a digest of its exact
// text, since the readable form folds case and drops characters (two
// issuers must never share a keyring). certmagic's Safe keeps "@", which
// no key segment may hold, so it is dropped too (an issuer whose path has
// one could otherwise never keep a keyring).
func issuerName(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	readable := strings.ReplaceAll(certmagic.StorageKeys.Safe(issuer), "@", "")
	return readable + "-" + hex.EncodeToString(sum[:8])
}

// KeyringKey is where the issuer's keyring lives. With the default store it
// is the file oauth/issuers/<name>/keyring.json in Caddy storage; error
// messages name it so an operator can find it.
func KeyringKey(issuer string) string {
	return path.Join("issuers", issuerName(issuer), "keyring.json")
}

// IDTokenKeyring is the name under which the keyring that signs ID tokens
// with RS256 (OpenID Connect Core §15.1) is kept when the issuer's own key
// uses another algorithm: a keyring of its own, stored, locked and rotated
// as the issuer's is. No issuer has a fragment (RFC 8414 §2), so the name
// is never an issuer's.
func IDTokenKeyring(issuer string) string { return issuer + "#id-token-rs256" }

func keyringLockName(issuer string) string { return "keyring-" + issuerName(issuer) }
func lockKey(name string) string           { return "locks/" + name }

// SafeID maps an id (a client_id may hold ~ and :, a username @ and +) to a
// key segment without collisions: ids that are already safe stay readable;
// others become x- and their hex, which no safe id left as it is starts with.
// The empty id, which is no segment, becomes "x-".
func SafeID(id string) string {
	safe := true
	for i := 0; i < len(id); i++ {
		if !safeByte(id[i]) {
			safe = false
			break
		}
	}
	if safe && id != "" && id != "." && id != ".." && !strings.HasPrefix(id, "x-") {
		return id
	}
	return "x-" + hex.EncodeToString([]byte(id))
}
