package oauthjwt

import (
	"encoding/json"
	"testing"
)

// BenchmarkClaimMappingApply measures the claim mapping alone, as run once
// per verified token: a Keycloak-shaped payload (client id azp, scopes in
// scope, roles nested in realm_access.roles) and an Entra v1 one (azp
// absent, appid second, scopes in scp), against the strict profile's scope
// merge it replaces.
func BenchmarkClaimMappingApply(b *testing.B) {
	keycloak := []byte(`{"exp":1900000000,"iat":1800000000,"jti":"onrtac:3e4c3c23-7c1f-4c8e-9a53-5a9a5e0c8b5a","iss":"https://keycloak.example.com/realms/demo","aud":["https://api.example.com","account"],"sub":"f3b8c1d2-6f0a-4e4b-9b2e-0c6a1d9e7a11","typ":"Bearer","azp":"notes-web","sid":"5b0b7a4e-2c4d-4d8a-9a6e-3f1d2c7b9e10","acr":"1","allowed-origins":["https://app.example.com"],"realm_access":{"roles":["default-roles-demo","offline_access","uma_authorization","admin"]},"resource_access":{"account":{"roles":["manage-account","manage-account-links","view-profile"]}},"scope":"openid profile email notes:read","email_verified":true,"name":"Alice Liddell","preferred_username":"alice","given_name":"Alice","family_name":"Liddell","email":"alice@example.com"}`)
	entra := []byte(`{"aud":"ef1da9d4-ff77-4c3e-a005-840c3f830745","iss":"https://sts.windows.net/fa15d692-e9c7-4460-a743-29f29522229/","iat":1537233106,"nbf":1537233106,"exp":1537237006,"acr":"1","aio":"AXQAi/8IAAAAFm+E/QTG+gFnVxLjWdw8K+61AGrSOuMMF6ebaMj7XO3IbmD3fGmrOyD+NvZyGn2VaT/kDKXw4MIhrgGVq6Bn8wLXoT1LkIZ+FzQVkJPPLQOV4KcXqSlCVPDS/DiCDgE222TImMvWNaEMaUOTsIGvTQ==","amr":["wia"],"appid":"75dbe77f-10a3-4e59-85fd-8c127544f17c","appidacr":"0","email":"AbeLi@microsoft.com","family_name":"Lincoln","given_name":"Abe (MSFT)","idp":"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd0122247/","ipaddr":"222.222.222.22","name":"abeli","oid":"02223b6b-aa1d-42d4-9ec0-1b2bb9194438","rh":"I","scp":"user_impersonation","sub":"l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA","tid":"fa15d692-e9c7-4460-a743-29f2956fd429","unique_name":"abeli@microsoft.com","uti":"FVsGxYXI30-TuikuuUoFAA","ver":"1.0"}`)
	kcMapping, _ := NewClaimMapping([]string{"azp"}, "scope", "realm_access.roles")
	entraMapping, _ := NewClaimMapping([]string{"azp", "appid"}, "scp", "roles")
	for _, bc := range []struct {
		name    string
		payload []byte
		m       *ClaimMapping
	}{
		{"keycloak", keycloak, kcMapping},
		{"entra_v1", entra, entraMapping},
		{"strict_merge", keycloak, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var base Claims
			if err := json.Unmarshal(bc.payload, &base); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c := Claims{RegisteredClaims: base.RegisteredClaims, ClientID: base.ClientID, Scope: base.Scope, Scp: base.Scp, payload: string(bc.payload)}
				if bc.m == nil {
					c.scopes = c.mergeScopes()
					c.scopeText = JoinScope(c.scopes)
					continue
				}
				if err := bc.m.apply(&c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
