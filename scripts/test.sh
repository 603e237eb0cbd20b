#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine that has Go: installs what the
# tests need (redis-server, Node packages for the peer tests) and runs them.
# Every server the tests use is started by the tests on 127.0.0.1 and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
need_apt() { # need_apt COMMAND PACKAGE...
  local cmd=$1; shift
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "test.sh: installing $* (no $cmd found)"
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
  fi
}
need_apt redis-server redis-server
need_apt node nodejs npm
need_apt npm npm
need_apt chromium chromium
# The Python example of docs/integration.md runs on Debian's python3 with Authlib.
if ! /usr/bin/python3 -c 'import authlib, requests' >/dev/null 2>&1; then
  echo "test.sh: installing python3-authlib python3-requests"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-authlib python3-requests >/dev/null
fi
# The SAML SP of broker/samlidp_onelogin_test.go: Debian's python3-saml on xmlsec1.
if ! /usr/bin/python3 -c 'import onelogin.saml2.auth, xmlsec' >/dev/null 2>&1; then
  echo "test.sh: installing python3-onelogin-saml2 python3-xmlsec"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-onelogin-saml2 python3-xmlsec >/dev/null
fi

if [ -f e2e/node/package-lock.json ]; then
  (cd e2e/node && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -f e2e/saml/node/package-lock.json ]; then
  (cd e2e/saml/node && npm ci --no-audit --no-fund --loglevel=error)
fi
# axe-core, which e2e/chrome's accessibility test evaluates in each page.
if [ -f e2e/chrome/package-lock.json ]; then
  (cd e2e/chrome && npm ci --no-audit --no-fund --loglevel=error)
fi

go vet ./...
# staticcheck, pinned in tools/go.mod (a module of its own, so the linter's
# dependencies never change the versions built into realmgate); go tool
# fetches and builds it through the module proxy on first use.
go tool -modfile=tools/go.mod staticcheck ./...
go test -count=1 -timeout 15m "$@" ./...
# The deployment files (Dockerfile, compose, Helm chart): a module of its own,
# so Helm's and Kubernetes' libraries stay out of realmgate's go.mod.
(cd deploy/test && go vet ./... && go test -count=1 -timeout 5m ./...)
