// Command gen writes a configuration file with many tenants to stdout:
//
//	go run ./internal/scaleconfig/gen -tenants 100000 -shared-issuer https://login.idp.example > /tmp/100k.yaml
//	time realmgate check-config /tmp/100k.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/realmgate/realmgate/internal/scaleconfig"
)

func main() {
	var o scaleconfig.Options
	flag.IntVar(&o.Tenants, "tenants", 100_000, "number of tenants")
	flag.StringVar(&o.SharedIssuer, "shared-issuer", "", "issuer of every tenant's IdP (one multi-tenant IdP); empty: one IdP per tenant")
	flag.Parse()
	if err := scaleconfig.Write(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
