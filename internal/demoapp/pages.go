package demoapp

import (
	"bytes"
	"html/template"
	"net/http"
)

// pageCSP forbids framing and scripts. No form-action: browsers apply it to
// the redirect that follows the sign-in form.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"

// demoUsers are offered on the home page (the dev IdP's demo realms).
var demoUsers = []struct{ Email, Note string }{
	{"alice@acme.test", "ACME, group Finance-Admins"},
	{"bob@acme.test", "ACME, group Finance-Readers"},
	{"carol@globex.test", "Globex"},
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Notes (realmgate demo)</title>
<style>
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;background:#fafaf7;color:#222;overflow-wrap:anywhere}
header{background:#1d3557;color:#fff;padding:.8em 1.2em;font-weight:600}
main{max-width:48em;margin:2em auto;padding:0 1em}
form.signin{display:flex;flex-wrap:wrap;gap:.5em}
input[type=email]{font-size:1em;padding:.5em;flex:1 1 14em;min-width:0;max-width:22em}
button{font-size:1em;padding:.5em 1.2em}
table.claims{border-collapse:collapse;margin:1em 0;max-width:100%}
table.claims th,table.claims td{border:1px solid #ccc;padding:.4em .8em;text-align:left;vertical-align:top}
table.claims th{background:#eef;font-family:monospace;overflow-wrap:normal}
td.big{font-size:1.2em;font-weight:600}
pre{background:#222;color:#eee;padding:1em;overflow:auto;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere}
.err{border-left:4px solid #b00020;padding-left:1em}
.muted{color:#666}
</style></head><body><header>Notes · a demo SaaS app that trusts one issuer: realmgate</header><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "home"}}{{template "head" "Sign in"}}
<h1>Sign in with your work email</h1>
<p>This app knows nothing about its customers' identity providers. It trusts one issuer,
<code>{{.Issuer}}</code>. realmgate finds your company from your email, sends you to its IdP,
and gives the app a token with your tenant (<code>tid</code>) and <code>roles</code>.</p>
<form class="signin" method="get" action="/login">
<input type="email" name="login_hint" placeholder="you@company.example" autocomplete="username" required>
<button type="submit">Sign in</button>
</form>
<h2>Demo users to try</h2>
<ul>{{range .Users}}<li><a href="/login?login_hint={{.Email}}">{{.Email}}</a> <span class="muted">({{.Note}})</span></li>{{end}}</ul>
<p class="muted">The upstream IdPs of the demo are a development IdP: pick the user, no password.</p>
{{template "foot"}}{{end}}

{{define "result"}}{{template "head" "Signed in"}}
<h1>Signed in</h1>
<p>The ID token from <code>{{.Issuer}}</code> was verified (signature, issuer, audience, expiry, nonce).</p>
<table class="claims">{{range .Claims}}<tr><th>{{.Name}}</th><td class="big">{{.Value}}</td></tr>{{end}}</table>
<p><a href="/login?prompt=login">Sign in as someone else</a> · <a href="/">Home</a></p>
<h2>Header</h2>
<pre>{{.Header}}</pre>
<h2>Payload</h2>
<pre>{{.Payload}}</pre>
<p class="muted">Signature: {{.Signature}} bytes.</p>
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" .Title}}
<div class="err"><h1>{{.Title}}</h1><p>{{.Message}}</p></div>
<p><a href="/">Start over</a></p>
{{template "foot"}}{{end}}
`))

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "demoapp: page rendering failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *App) handleHome(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, "home", map[string]any{"Issuer": a.opts.Issuer, "Users": demoUsers})
}

func (a *App) errorPage(w http.ResponseWriter, status int, title, msg string) {
	render(w, status, "error", map[string]string{"Title": title, "Message": msg})
}
