package saml

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/realmgate/realmgate/providers"
)

// FuzzSAMLResponse feeds arbitrary documents through the whole ACS
// validation (limits, shape checks, decryption, crewjam/saml, goxmldsig):
// it must never panic, and never accept anything but a genuine response.
//
//	go test ./providers/saml -run '^$' -fuzz FuzzSAMLResponse -fuzztime 10m
func FuzzSAMLResponse(f *testing.F) {
	testKeys(f)
	c := newTestConnector(f, nil)
	for _, r := range []*resp{
		{inResponseTo: reqID, signAssertion: true},
		{inResponseTo: reqID, signResponse: true},
		{inResponseTo: reqID},
		{inResponseTo: reqID, signAssertion: true, noAudience: true, audiences: [][]string{}},
	} {
		s, err := r.build(f).WriteToBytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"/></EncryptedAssertion></samlp:Response>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		req := acsRequest(base64.StdEncoding.EncodeToString(doc), "st")
		id, err := c.HandleCallback(context.Background(), providers.LoginRequest{State: "st"}, loginDataFor(reqID), req)
		if err == nil {
			// Only a response the test IdP signed can pass; the mutated
			// ones that still pass must then name the test user.
			if id.Issuer != testIdPEntity || id.Subject == "" {
				t.Fatalf("accepted a response with identity %+v", id)
			}
			return
		}
		if !errors.Is(err, providers.ErrInvalidResponse) && !errors.Is(err, providers.ErrAccessDenied) {
			t.Fatalf("error %v is neither ErrInvalidResponse nor ErrAccessDenied", err)
		}
	})
}
