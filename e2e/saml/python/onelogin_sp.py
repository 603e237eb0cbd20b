"""A SAML service provider nobody here wrote: python3-saml (Debian's
python3-onelogin-saml2, OneLogin's toolkit on xmlsec1), driven one step at a
time by broker/samlidp_onelogin_test.go, which plays the browser.

  onelogin_sp.py CONFIG.json login   -> {"url": AuthnRequest URL (HTTP-Redirect, signed), "id"}
  onelogin_sp.py CONFIG.json acs     <- {"SAMLResponse", "RelayState", "id"} -> errors, NameID, attributes
  onelogin_sp.py CONFIG.json logout  <- {"nameid", "session_index"} -> {"url": signed LogoutRequest, "id"}
  onelogin_sp.py CONFIG.json sls     <- {"query": LogoutResponse query, "id"} -> errors

strict mode; signed AuthnRequests and LogoutRequests (RSA-SHA256), signed
messages and assertions wanted, encrypted assertions when CONFIG says so.
"""
import sys, json
from onelogin.saml2.auth import OneLogin_Saml2_Auth
cfg = json.load(open(sys.argv[1]))
mode = sys.argv[2]
settings = {
  "strict": True, "debug": True,
  "sp": {"entityId": cfg["entity"], "assertionConsumerService": {"url": cfg["acs"], "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
         "singleLogoutService": {"url": cfg["slo"], "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
         "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", "x509cert": cfg["cert"], "privateKey": cfg["key"]},
  "idp": {"entityId": cfg["idp_entity"], "singleSignOnService": {"url": cfg["sso"], "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
          "singleLogoutService": {"url": cfg["idp_slo"], "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
          "x509cert": cfg["idp_cert"]},
  "security": {"authnRequestsSigned": True, "logoutRequestSigned": True, "logoutResponseSigned": True, "wantAssertionsSigned": True,
               "wantMessagesSigned": True, "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
               "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256", "wantAssertionsEncrypted": cfg.get("encrypted", False)},
}
req = {"https": "on", "http_host": "sp.example", "script_name": "/saml/acs", "server_port": "443", "get_data": {}, "post_data": {}}
if mode == "login":
    auth = OneLogin_Saml2_Auth(req, settings)
    url = auth.login(return_to="rs-py")
    print(json.dumps({"url": url, "id": auth.get_last_request_id()}))
elif mode == "acs":
    d = json.load(sys.stdin)
    req["post_data"] = {"SAMLResponse": d["SAMLResponse"], "RelayState": d.get("RelayState", "")}
    auth = OneLogin_Saml2_Auth(req, settings)
    auth.process_response(request_id=d["id"])
    print(json.dumps({"errors": auth.get_errors(), "reason": auth.get_last_error_reason(), "nameid": auth.get_nameid(),
                      "attrs": auth.get_attributes(), "session_index": auth.get_session_index()}))
elif mode == "logout":
    d = json.load(sys.stdin)
    auth = OneLogin_Saml2_Auth(req, settings)
    url = auth.logout(return_to="bye-py", name_id=d["nameid"], session_index=d["session_index"], name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    print(json.dumps({"url": url, "id": auth.get_last_request_id()}))
elif mode == "sls":
    d = json.load(sys.stdin)
    req["script_name"] = "/saml/slo"
    req["get_data"] = d["query"]
    auth = OneLogin_Saml2_Auth(req, settings)
    auth.process_slo(request_id=d["id"], keep_local_session=True)
    print(json.dumps({"errors": auth.get_errors(), "reason": auth.get_last_error_reason()}))
