package broker

import (
	"testing"

	"github.com/realmgate/realmgate/locale/localetest"
)

// pageScan is where the broker's pages take their messages from: the
// literals given to renderError(f), T(f) and the functions that take a
// message to show, assigned to a page's Title, Message, Detail or Text or
// to msg and title, and the {{.T "..."}} of the templates and the ui frame.
var pageScan = localetest.Scan{
	Dir:    ".",
	Fields: map[string]bool{"Title": true, "Message": true, "Detail": true, "Text": true},
	Args: map[string][]int{"renderError": {2, 3}, "renderErrorf": {2, 3}, "T": {0}, "Tf": {0},
		"discoveryPage": {4}, "retry": {0}, "showAccess": {2}, "formError": {1}},
	Vars:      map[string]bool{"msg": true, "title": true},
	Templates: []string{"templates/*.html", "../ui/templates/*.html"},
}

// TestPages_EveryMessageInCatalog: every message a page shows is in the
// catalog (package locale), whose test checks every language has it.
func TestPages_EveryMessageInCatalog(t *testing.T) {
	msgs := localetest.Messages(t, pageScan)
	for _, v := range scopeText {
		msgs[v] = "scopeText"
	}
	for _, v := range []string{AccessPending, AccessActive, AccessDenied, AccessExpired, AccessRevoked} {
		msgs[v] = "access status"
	}
	localetest.CheckCatalog(t, msgs, 50)
}

// TestPages_NoMessageBuiltByConcatenation: a message put together with +
// cannot be translated; renderErrorf and Tf take its parts instead.
func TestPages_NoMessageBuiltByConcatenation(t *testing.T) {
	for _, at := range localetest.Concatenated(t, pageScan) {
		t.Errorf("%s: a page message built with +: use renderErrorf or Tf", at)
	}
}
