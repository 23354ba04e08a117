package oauthjwt

import (
	"encoding/json"
)

// ClaimsFromJSON reads claims from a JSON object that is not a signed
// token, such as an RFC 7662 §2.2 introspection response, whose members
// (exp, iat, nbf, sub, aud, iss, client_id, scope, jti) are the JWT claims
// of the same names. Claim serves every member, as it does for a JWT. The
// caller has checked where the object came from.
func ClaimsFromJSON(payload []byte) (*Claims, error) {
	c := new(Claims)
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, err
	}
	c.payload = string(payload)
	c.scopes = c.mergeScopes()
	c.scopeText = JoinScope(c.scopes)
	c.finish("", nil)
	return c, nil
}
