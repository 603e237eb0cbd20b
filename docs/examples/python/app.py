"""A web app that signs its users in with realmgate, using Authlib
(docs/integration.md). It starts the authorization code flow with PKCE at /,
and at /callback checks the state and the iss parameter, redeems the code and
validates the ID token (signature against realmgate's JWKS, iss, aud, exp,
nonce) before showing its claims."""
import json
import os
import secrets
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt

ISSUER = os.environ.get("ISSUER", "http://127.0.0.1:8080")
CLIENT_ID = os.environ.get("CLIENT_ID", "example-app")
CLIENT_SECRET = os.environ.get("CLIENT_SECRET", "example-app-secret-do-not-use-in-production")
REDIRECT_URI = os.environ.get("REDIRECT_URI", "http://127.0.0.1:3000/callback")

meta = requests.get(ISSUER + "/.well-known/openid-configuration", timeout=10).json()
jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
pending = {}  # state -> (code_verifier, nonce); a real app keeps these in its session


def session():
    return OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope="openid email profile roles",
                         redirect_uri=REDIRECT_URI, code_challenge_method="S256")


class App(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/":
            verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
            extra = {"nonce": nonce}
            if "email" in query:
                extra["login_hint"] = query["email"]  # straight to the user's IdP
            uri, state = session().create_authorization_url(
                meta["authorization_endpoint"], code_verifier=verifier, **extra)
            pending[state] = (verifier, nonce)
            self.send_response(302)
            self.send_header("Location", uri)
            self.end_headers()
        elif url.path == urlparse(REDIRECT_URI).path:
            entry = pending.pop(query.get("state"), None)
            if entry is None or query.get("iss") != ISSUER:  # RFC 9207
                return self.fail(400, "unknown state or wrong issuer")
            verifier, nonce = entry
            token = session().fetch_token(meta["token_endpoint"], code=query["code"], code_verifier=verifier)
            claims = jwt.decode(token["id_token"], jwks, claims_options={
                "iss": {"essential": True, "value": ISSUER},
                "aud": {"essential": True, "value": CLIENT_ID},
                "nonce": {"essential": True, "value": nonce},
            })
            claims.validate()  # exp, iat, and the options above
            body = json.dumps(dict(claims)).encode()  # tid, roles, email, ...
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        else:
            self.fail(404, "not found")

    def fail(self, status, message):
        self.send_response(status)
        self.end_headers()
        self.wfile.write(message.encode())


if __name__ == "__main__":
    addr = urlparse(REDIRECT_URI)
    print(f"listening on http://{addr.netloc}", flush=True)
    HTTPServer((addr.hostname, addr.port), App).serve_forever()
