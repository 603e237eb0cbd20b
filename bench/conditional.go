package main

// -conditional (issue 16): the tenant gets conditional access, and the
// baseline makes the one Redis round trip it costs a sign-in (the user's
// sign-in history: store.HistoryStore.Remember), so the round-trip
// comparison holds and the login flow's numbers show the added cost.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/realmgate/realmgate/broker/redisstore"
)

// conditionalEnv tells the baseline to mirror conditional access.
const conditionalEnv = "REALMGATE_BENCH_CONDITIONAL"

// conditionalConfig is appended to realmgate's configuration: it ends
// with the tenant, so the indented block continues the tenant's entry and
// the last one is top level. Empty without -conditional.
func (e *env) conditionalConfig() string {
	if !e.conditional {
		return ""
	}
	db, _ := filepath.Abs("testdata/geoip/test-city.mmdb") // the bench runs from the module root
	return `    conditional_access:
      auth_contexts:
        c1: {mfa: true}
      policies:
        - name: office
          if: signals.trusted_location
          action: allow
        - name: new country
          if: signals.new_country || signals.impossible_travel
          action: mfa
          notify: true
        - name: admins at night
          if: '"admins" in signals.groups && signals.risk != "low"'
          action: fresh_login
        - name: night
          if: signals.hour < 5 && client == "payroll"
          action: shorten_session
          session_lifetime: 1h
conditional_access:
  geoip:
    country_db: ` + strconv.Quote(db) + `
  locations:
    - name: office
      cidrs: ["10.0.0.0/8"]
      trusted: true
  policies:
    - name: no anonymizers
      if: signals.anonymizer || signals.denied_ip
      action: deny
      message: No VPNs.
`
}

// conditionalBaseline is whether the baseline mirrors conditional access.
var conditionalBaseline = os.Getenv(conditionalEnv) == "1"

// rememberSignIn is the baseline's mirror of the sign-in history write:
// one Remember (one script on one Redis hash).
func rememberSignIn(ctx context.Context, st *redisstore.Store, key string) error {
	if !conditionalBaseline {
		return nil
	}
	value := []byte("1 " + strconv.FormatInt(time.Now().Unix(), 10) + " - 0 - - 0")
	_, _, err := st.Remember(ctx, key, value, nil, 32, 90*24*time.Hour)
	return err
}
