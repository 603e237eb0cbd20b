package portal_test

import (
	"testing"

	"github.com/realmgate/realmgate/locale/localetest"
)

// portalScan is where the portal's pages take their messages from: the
// literals given to T and Tf and to add (a value's label), assigned to the
// fields below (every element of a Steps list), and the {{.T "..."}} of the
// templates and the ui frame.
var portalScan = localetest.Scan{
	Dir:       ".",
	Fields:    map[string]bool{"Title": true, "Message": true, "Detail": true, "Status": true, "Label": true, "Steps": true},
	Args:      map[string][]int{"T": {0}, "Tf": {0}, "add": {1}},
	Templates: []string{"templates/*.html", "../ui/templates/*.html"},
}

// TestPages_EveryMessageInCatalog: every message a portal page shows is in
// the catalog (package locale), whose test checks every language has it.
func TestPages_EveryMessageInCatalog(t *testing.T) {
	localetest.CheckCatalog(t, localetest.Messages(t, portalScan), 80)
}

// TestPages_NoMessageBuiltByConcatenation: a message put together with +
// cannot be translated; Tf takes its parts instead.
func TestPages_NoMessageBuiltByConcatenation(t *testing.T) {
	for _, at := range localetest.Concatenated(t, portalScan) {
		t.Errorf("%s: a page message built with +: use Tf", at)
	}
}
