// Package resilience holds realmgate's resilience acceptance tests (issue 7):
// several `realmgate serve` processes built from cmd/realmgate on real
// redis-server processes (standalone, Sentinel, Cluster), a development
// OpenID Provider (internal/devidp) as every tenant's upstream, and a Go
// client that plays browsers and applications.
//
// What they prove, and the numbers they measure, are in docs/resilience.md.
// A missing redis-server fails the tests; nothing is skipped. Set
// REALMGATE_SOAK=10000 to run the multi-instance test with 10,000 logins
// instead of 1,000.
package resilience
