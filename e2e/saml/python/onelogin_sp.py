"""A SAML service provider nobody here wrote: python3-saml (Debian's
python3-onelogin-saml2, OneLogin's toolkit on xmlsec1), driven one step at a
time by broker/samlidp_onelogin_test.go, which plays the browser.

  onelogin_sp.py CONFIG.json login   -> {"url": AuthnRequest URL (HTTP-Redirect, signed), "id"}
  onelogin_sp.py CONFIG.json acs     <- {"SAMLResponse", "RelayState", "id"} -> errors, NameID, attributes
  onelogin_sp.py CONFIG.json logout  <- {"nameid", "session_index"} -> {"url": signed LogoutRequest, "id"}
  onelogin_sp.py CONFIG.json sls     <- {"query": LogoutResponse query, "id"} -> errors
  onelogin_sp.py CONFIG.json login_post  -> {"action", "SAMLRequest", "RelayState", "id"}: an AuthnRequest
                                            for the HTTP-POST binding, enveloped XML signature (add_sign)
  onelogin_sp.py CONFIG.json slo_request <- {"query": LogoutRequest query} -> errors, the LogoutRequest's
                                            NameID and SessionIndexes, and "url": the signed LogoutResponse

strict mode; signed AuthnRequests and LogoutRequests (RSA-SHA256), signed
messages and assertions wanted, encrypted assertions when CONFIG says so.
"""
import sys, json, base64
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.constants import OneLogin_Saml2_Constants
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
elif mode == "login_post":
    # python3-saml 1.12 has no login_post (later versions do, doing this):
    # the toolkit's AuthnRequest, signed with its add_sign, HTTP-POST binding.
    st = OneLogin_Saml2_Settings(settings)
    areq = OneLogin_Saml2_Authn_Request(st)
    signed = OneLogin_Saml2_Utils.add_sign(areq.get_xml(), st.get_sp_key(), st.get_sp_cert(),
                                           sign_algorithm=OneLogin_Saml2_Constants.RSA_SHA256,
                                           digest_algorithm=OneLogin_Saml2_Constants.SHA256)
    print(json.dumps({"action": cfg["sso"], "SAMLRequest": base64.b64encode(signed).decode(),
                      "RelayState": "rs-py-post", "id": areq.get_id()}))
elif mode == "slo_request":
    # realmgate's LogoutRequest (HTTP-Redirect): verified in strict mode,
    # answered with a signed LogoutResponse to realmgate's SLO service.
    d = json.load(sys.stdin)
    req["script_name"] = "/saml/slo"
    req["get_data"] = d["query"]
    auth = OneLogin_Saml2_Auth(req, settings)
    url = auth.process_slo(keep_local_session=True)
    xml = auth.get_last_request_xml()
    print(json.dumps({"errors": auth.get_errors(), "reason": auth.get_last_error_reason(), "url": url,
                      "nameid": OneLogin_Saml2_Logout_Request.get_nameid(xml) if xml else None,
                      "session_indexes": OneLogin_Saml2_Logout_Request.get_session_indexes(xml) if xml else None}))
