#!/bin/sh
# Makes the RSA key pairs the SAML tests sign and encrypt with. Self-signed,
# valid for 100 years so no fixture expires. Run from this directory:
#   sh gen-keys.sh
set -eu
for name in idp-a idp-b evil sp; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -sha256 \
    -subj "/CN=realmgate-test-$name" -keyout "$name.key" -out "$name.crt" 2>/dev/null
done
