package locale_test

import (
	"fmt"

	"github.com/realmgate/realmgate/locale"
)

func Example() {
	var n locale.Negotiator
	tag := n.Match("pt-BR, de;q=0.8", "fr") // German is the best supported match
	p := locale.Default().Printer(tag)
	fmt.Println(p.Lang())
	fmt.Println(locale.Default().Printer(n.Match("", "")).Tf("Sign in to %s", "Acme"))
	// Output:
	// de
	// Sign in to Acme
}
