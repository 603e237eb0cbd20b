package devidp

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// pageCSP forbids framing (clickjacking on the picker) and every script.
// No form-action: browsers apply it to the redirect that follows the POST.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; frame-ancestors 'none'"

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
.banner{background:#b00020;color:#fff;font-weight:700;text-align:center;padding:.6em;letter-spacing:.03em}
main{max-width:40em;margin:2em auto;padding:0 1em}
.users{display:flex;flex-direction:column;gap:.6em}
button.user{display:block;width:100%;text-align:left;padding:.8em 1em;border:2px solid #ccc;border-radius:8px;background:#fff;font-size:1em;cursor:pointer}
button.user:hover,button.user:focus{border-color:#333}
button.user.hint{border-color:#0a6;background:#eafff3}
.muted{color:#666;font-size:.9em}
code{background:#eee;padding:0 .2em}
button.cancel{margin-top:1.2em;background:none;border:none;color:#555;text-decoration:underline;cursor:pointer}
</style></head><body>
<div class="banner" role="alert">` + bannerText + `</div>
<main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "picker"}}{{template "head" .Title}}
<h1>Sign in to {{.Display}}</h1>
<p class="muted">Realm <code>{{.Realm}}</code> · client <code>{{.ClientID}}</code> · returns to <code>{{.ReturnTo}}</code></p>
{{if .LoginHint}}<p>Login hint: <strong>{{.LoginHint}}</strong>{{if not .HintMatched}} (no such demo user here){{end}}</p>{{end}}
<p>Pick a demo user. There is no password: this IdP exists only for development.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request_id" value="{{.RequestID}}">
<div class="users">
{{range .Users}}<button class="user{{if .Hinted}} hint{{end}}" type="submit" name="user" value="{{.Subject}}"{{if .Hinted}} autofocus{{end}}>
<strong>{{.Name}}</strong>{{if .Hinted}} ✓ matches login hint{{end}}<br>
<span class="muted">{{.Email}}{{if .Groups}} · groups: {{.Groups}}{{end}} · sub {{.Subject}}</span>
</button>
{{end}}</div>
<button class="cancel" type="submit" name="cancel" value="1">Cancel (answer access_denied)</button>
</form>
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" .Title}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<p class="muted">The development IdP shows this page instead of redirecting, because the request could not be trusted.</p>
{{template "foot"}}{{end}}

{{define "index"}}{{template "head" "Development IdP"}}
<h1>Development IdP</h1>
<ul>{{range .}}<li><strong>{{.Display}}</strong>: issuer <code>{{.Issuer}}</code> (<a href="{{.Discovery}}">discovery</a>)</li>{{end}}</ul>
{{template "foot"}}{{end}}
`))

type userView struct {
	Subject, Name, Email, Groups string
	Hinted                       bool
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "devidp: page rendering failed", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) pickerPage(w http.ResponseWriter, rm *realm, ar *authRequest, id string) {
	hinted := rm.userByHint(ar.loginHint)
	users := make([]userView, 0, len(rm.users))
	for _, u := range rm.users {
		name := u.Name
		if name == "" {
			name = u.Subject
		}
		users = append(users, userView{
			Subject: u.Subject, Name: name, Email: u.Email,
			Groups: strings.Join(u.Groups, ", "), Hinted: u == hinted,
		})
	}
	returnTo := ar.redirectURI
	if u, err := url.Parse(ar.redirectURI); err == nil {
		returnTo = u.Scheme + "://" + u.Host + u.Path
	}
	render(w, http.StatusOK, "picker", map[string]any{
		"Title":       "Sign in to " + rm.display + " (development IdP)",
		"Display":     rm.display,
		"Realm":       rm.name,
		"ClientID":    ar.clientID,
		"ReturnTo":    returnTo,
		"LoginHint":   ar.loginHint,
		"HintMatched": hinted != nil,
		"Action":      s.prefix + "/" + rm.name + "/select",
		"RequestID":   id,
		"Users":       users,
	})
}

func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	render(w, status, "error", map[string]string{"Title": title, "Message": msg})
}

func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request) {
	type item struct{ Display, Issuer, Discovery string }
	items := make([]item, 0, len(s.realms))
	for _, rm := range s.realms {
		items = append(items, item{rm.display, rm.issuer, rm.issuer + "/.well-known/openid-configuration"})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Issuer < items[j].Issuer })
	render(w, http.StatusOK, "index", items)
}
