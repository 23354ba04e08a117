package dpop

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyapigw/gateway/internal/bearer"
	"github.com/caddyapigw/gateway/internal/reqinfo"
)

// Resource checks the DPoP side of a request to a protected resource (RFC
// 9449 §7): oauth_scope's routes and the authorization server's userinfo
// endpoint share it.
type Resource struct {
	Replay   Replay
	Algs     []string // accepted proof algorithms; Algs when nil
	Required bool     // only DPoP-bound tokens are accepted
	algs     string
}

// NewResource makes a Resource; algs nil means Algs.
func NewResource(replay Replay, algs []string, required bool) *Resource {
	if algs == nil {
		algs = Algs
	}
	return &Resource{Replay: replay, Algs: algs, Required: required, algs: strings.Join(algs, " ")}
}

// Challenge is the DPoP challenge of a refusal of r (nil for none): none
// when the request did not use DPoP and the resource does not require it
// (the Bearer challenge alone), else one with the algorithms, carrying the
// error when DPoP was used.
func (res *Resource) Challenge(r *http.Request) *bearer.DPoPChallenge {
	used := UsesDPoP(r)
	if !used && !res.Required {
		return nil
	}
	return &bearer.DPoPChallenge{Algs: res.algs, Only: res.Required, ErrorHere: true}
}

// UsesDPoP reports whether r came with the DPoP scheme or a DPoP proof.
func UsesDPoP(r *http.Request) bool {
	if len(r.Header.Values("DPoP")) > 0 {
		return true
	}
	a := r.Header.Get("Authorization")
	return len(a) > 4 && strings.EqualFold(a[:5], "dpop ")
}

// Check applies §7 to a request whose token verified: token is the access
// token, scheme how it came (bearer.SchemeBearer or bearer.SchemeDPoP),
// jkt the token's cnf.jkt ("" for an unbound token). A DPoP-bound token
// goes only with the DPoP scheme and a fresh proof by its key for this
// very request and token; a bearer token only where the resource allows
// them. It returns nil to let the request through; a 503 refusal means
// the replay record did not answer (the caller adds Retry-After).
func (res *Resource) Check(r *http.Request, token, scheme, jkt string) *bearer.Error {
	refuse := func(code, desc string) *bearer.Error {
		return &bearer.Error{Status: http.StatusUnauthorized, Code: code, Desc: desc,
			DPoP: &bearer.DPoPChallenge{Algs: res.algs, Only: res.Required, ErrorHere: true}}
	}
	if scheme != bearer.SchemeDPoP {
		switch {
		case jkt != "":
			// §7.2: a bound token is never a bearer token, else a thief
			// would just drop the proof.
			return refuse(bearer.InvalidToken, "this token is DPoP-bound: send it with the DPoP scheme and a proof")
		case res.Required:
			return refuse(bearer.InvalidToken, "this resource takes DPoP-bound tokens only")
		}
		return nil
	}
	if jkt == "" {
		return refuse(bearer.InvalidToken, "the DPoP scheme needs a DPoP-bound token")
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return refuse(bearer.InvalidDPoPProof, "exactly one DPoP proof is required") // §4.3 item 1
	}
	p, err := Check(proofs[0], Expect{Method: r.Method, URL: reqinfo.URL(r), AccessToken: token, Now: time.Now(), Algs: res.Algs})
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return refuse(bearer.InvalidDPoPProof, pe.Desc)
		}
		return refuse(bearer.InvalidDPoPProof, "DPoP proof refused")
	}
	if p.JKT != jkt {
		return refuse(bearer.InvalidDPoPProof, "the DPoP proof is not signed by the key the token is bound to") // §7.1
	}
	fresh, err := res.Replay.Claim(r.Context(), p.JKT, p.JTI, p.IssuedAt.Add(DefaultWindow))
	if err != nil {
		return &bearer.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Desc: "DPoP proofs cannot be checked for replay now"}
	}
	if !fresh {
		return refuse(bearer.InvalidDPoPProof, "DPoP proof was already used") // §11.1
	}
	return nil
}
