package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// vu is a virtual user: a browser with its own cookie jar on the shared
// keep-alive transport, and its PKCE verifier.
type vu struct {
	c         *http.Client
	verifier  string
	challenge string
	rt        string // current refresh token (refresh flow)
}

func (e *env) newVU() *vu {
	jar, _ := cookiejar.New(nil)
	v := &vu{c: &http.Client{Transport: e.transport, Jar: jar, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	v.verifier = rand.Text() + rand.Text() // 52 unreserved characters (RFC 7636 §4.1)
	sum := sha256.Sum256([]byte(v.verifier))
	v.challenge = b64.EncodeToString(sum[:])
	return v
}

// fresh gives the virtual user a new, empty browser.
func (v *vu) fresh() {
	jar, _ := cookiejar.New(nil)
	c := *v.c
	c.Jar = jar
	v.c = &c
}

// get sends a GET and returns status, Location and body.
func (v *vu) get(u string) (int, string, []byte, error) {
	resp, err := v.c.Get(u)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	loc := ""
	if l, err := resp.Location(); err == nil {
		loc = l.String()
	}
	return resp.StatusCode, loc, body, nil
}

// postToken calls /token with client_secret_basic.
func (v *vu) postToken(t *target, secret string, form url.Values) (int, []byte, error) {
	return v.postTokenAs(t, benchClientID, secret, form)
}

// postTokenAs calls /token as client id with client_secret_basic.
func (v *vu) postTokenAs(t *target, id, secret string, form url.Values) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodPost, t.url+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := v.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// authorizeURL is the client's authorization request.
func (v *vu) authorizeURL(t *target, state, hint string) string {
	scope, path := benchScope, "/authorize"
	if t.scope != "" {
		scope = t.scope
	}
	if t.authPath != "" {
		path = t.authPath
	}
	q := url.Values{"client_id": {benchClientID}, "redirect_uri": {benchRedirectURI}, "response_type": {"code"},
		"scope": {scope}, "state": {state}, "nonce": {rand.Text()}, "code_challenge": {v.challenge},
		"code_challenge_method": {"S256"}}
	if hint != "" {
		q.Set("login_hint", hint)
	}
	return t.url + path + "?" + q.Encode()
}

// authorize follows redirects from the authorization request until the
// browser is sent back to the client, and returns the code. hop, if not nil,
// runs after each response (memory measurement).
func (v *vu) authorize(t *target, hint string, hop func(i int)) (string, error) {
	state := rand.Text()
	loc := v.authorizeURL(t, state, hint)
	for i := 0; i < 6; i++ {
		status, next, body, err := v.get(loc)
		if err != nil {
			return "", err
		}
		if hop != nil {
			hop(i)
		}
		if status != http.StatusFound && status != http.StatusSeeOther {
			return "", fmt.Errorf("GET %s: status %d: %.200s", trimQuery(loc), status, body)
		}
		if strings.HasPrefix(next, benchRedirectURI+"?") {
			u, _ := url.Parse(next)
			q := u.Query()
			if q.Get("state") != state || q.Get("code") == "" {
				return "", fmt.Errorf("redirect back without code or with wrong state: %s", next)
			}
			return q.Get("code"), nil
		}
		loc = next
	}
	return "", fmt.Errorf("too many redirects from %s", t.url)
}

func trimQuery(u string) string { s, _, _ := strings.Cut(u, "?"); return s }

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// exchange redeems code at /token.
func (v *vu) exchange(t *target, secret, code, verifier string) (*tokenResponse, error) {
	status, body, err := v.postToken(t, secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {benchRedirectURI}, "code_verifier": {verifier}})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("code exchange: status %d: %.200s", status, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.IDToken == "" || tr.RefreshToken == "" {
		return nil, fmt.Errorf("code exchange: incomplete response %.200s", body)
	}
	return &tr, nil
}

// login is a whole brokered sign-in in a fresh browser: authorize with a
// login hint, through the upstream and the callback, then the code exchange.
func (v *vu) login(t *target, secret string, hop func(i int)) (*tokenResponse, error) {
	v.fresh()
	code, err := v.authorize(t, benchUserEmail, hop)
	if err != nil {
		return nil, err
	}
	return v.exchange(t, secret, code, v.verifier)
}

// refresh rotates the virtual user's refresh token.
func (v *vu) refresh(t *target, secret string) error {
	status, body, err := v.postToken(t, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {v.rt}})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("refresh: status %d: %.200s", status, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.RefreshToken == "" || tr.AccessToken == "" {
		return fmt.Errorf("refresh: incomplete response %.200s", body)
	}
	v.rt = tr.RefreshToken
	return nil
}

// codePool holds codes minted before a token run.
type codePool struct {
	mu    sync.Mutex
	codes []minted
	next  atomic.Int64
}

type minted struct{ code, verifier string }

func (p *codePool) add(m minted) {
	p.mu.Lock()
	p.codes = append(p.codes, m)
	p.mu.Unlock()
}

func (p *codePool) take() (minted, bool) {
	i := p.next.Add(1) - 1
	if int(i) >= len(p.codes) {
		return minted{}, false
	}
	return p.codes[i], true
}

// mintRealmgate makes up to n codes (or for at most d) through SSO: every
// virtual user is signed in once, then each /authorize is answered at once
// with a code for the existing session.
func (e *env) mintRealmgate(t *target, vus []*vu, n int, d time.Duration) (*codePool, error) {
	p := &codePool{codes: make([]minted, 0, n)}
	deadline := time.Now().Add(d)
	var count atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, len(vus))
	for _, v := range vus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && count.Add(1) <= int64(n) {
				code, err := v.authorize(t, "", nil)
				if err != nil {
					errc <- err
					return
				}
				p.add(minted{code, v.verifier})
			}
		}()
	}
	wg.Wait()
	close(errc)
	return p, <-errc
}

// mintBaseline asks the baseline to store n codes (setup, not measured).
func (e *env) mintBaseline(t *target, n int) (*codePool, error) {
	v := e.newVU()
	p := &codePool{codes: make([]minted, 0, n)}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	const chunk = 2000
	sem := make(chan struct{}, 4)
	for left := n; left > 0; left -= chunk {
		k := min(chunk, left)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := v.c.Post(fmt.Sprintf("%s/mint?n=%d&challenge=%s", t.url, k, v.challenge), "text/plain", nil)
			if err == nil {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("mint: %d %s", resp.StatusCode, body)
				}
				for _, c := range bytes.Fields(body) {
					p.add(minted{string(c), v.verifier})
				}
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return p, firstErr
}

// signInAll gives every virtual user an SSO session and a refresh token.
func (e *env) signInAll(t *target, vus []*vu) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(vus))
	for _, v := range vus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := v.login(t, e.secretFor(t), nil)
			if err != nil {
				errs <- err
				return
			}
			v.rt = tr.RefreshToken
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (e *env) secretFor(*target) string { return e.clientSecret }

func (e *env) vus(n int) []*vu {
	out := make([]*vu, n)
	for i := range out {
		out[i] = e.newVU()
	}
	return out
}

// runFlow measures one flow on realmgate and on the baseline: o.rounds
// alternating rounds (ABBA order, so drift on a shared machine hits both
// alike) whose results are summed, then, for token and refresh, one run of
// each paced at half its own maximum rate.
func runFlow(ctx context.Context, e *env, o options, flow string, out io.Writer) ([]*result, error) {
	targets := e.targets(flow)
	if o.order == "baseline-first" {
		targets[0], targets[1] = targets[1], targets[0]
	}
	runs := make([]func(phase) (*result, error), len(targets))
	for i, t := range targets {
		run, err := e.prepare(ctx, o, flow, t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		runs[i] = run
	}
	phaseFor := func(t *target, rate float64) phase {
		ph := phase{workers: o.concurrency, warmup: o.warmup, duration: o.duration / time.Duration(o.rounds),
			rate: rate, cpu: e.cpuPIDs(t), redisReads: e.redisReads}
		if flow == "login" {
			ph.workers = o.loginConc
		}
		return ph
	}
	total := make([]*result, len(targets))
	for round := range o.rounds {
		for k := range targets {
			i := k
			if round%2 == 1 {
				i = len(targets) - 1 - k
			}
			t := targets[i]
			ph := phaseFor(t, 0)
			ph.profile = round == 0 && (t.name == "realmgate" || t.name == "baseline") && o.profileDir != ""
			r, err := runs[i](ph)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			if t.name == "realmgate" {
				e.lastRate[flow] = r.perSecond()
			}
			total[i] = merge(total[i], r)
		}
	}
	// The round trips per request, counted exactly: a few requests one
	// after another on each target (the timed runs' read events per request
	// drift with the load: 4.7 against 3.2 for /token on a busy machine).
	for i, t := range targets {
		ph := phaseFor(t, 0)
		ph.workers, ph.warmup, ph.duration, ph.sequential = 1, 0, time.Second, sequentialOps
		r, err := runs[i](ph)
		if err != nil {
			return nil, fmt.Errorf("%s: counting round trips: %w", t.name, err)
		}
		total[i].exactRT = r.exactRT
		if r.errs > 0 {
			fmt.Fprintf(out, "%-9s %-9s round trips not counted: %d of %d requests failed: %s\n", flow, t.name, r.errs, sequentialOps, r.firstErr)
		}
	}
	var rows []*result
	for i, t := range targets {
		r := total[i]
		r.flow, r.target = flow, t.name
		fmt.Fprintf(out, "%-9s %-9s %s\n", flow, t.name, r.line())
		rows = append(rows, r)
	}
	if o.paced && (flow == "token" || flow == "refresh") {
		// -paced-runs N: N runs per target, in alternating order (realmgate
		// first in odd runs, as the rounds above), each at the same rate:
		// half of that target's maximum measured above.
		for run := range max(1, o.pacedRuns) {
			for k := range targets {
				i := k
				if run%2 == 1 {
					i = len(targets) - 1 - k
				}
				t := targets[i]
				if total[i].perSecond() == 0 {
					continue
				}
				ph := phaseFor(t, total[i].perSecond()/2)
				ph.duration = o.duration
				r, err := runs[i](ph)
				if err != nil {
					return nil, fmt.Errorf("%s paced: %w", t.name, err)
				}
				r.flow, r.target = flow, t.name
				if o.pacedRuns > 1 {
					r.run = run + 1
				}
				fmt.Fprintf(out, "%-9s %-9s %s\n", flow, t.name, r.line())
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

// sequentialOps is how many requests of a flow count its Redis round trips.
const sequentialOps = 20

// merge adds the counts, windows, CPU times and latencies of b to a.
func merge(a, b *result) *result {
	if a == nil {
		return b
	}
	a.n += b.n
	a.elapsed += b.elapsed
	a.errs += b.errs
	if a.firstErr == "" {
		a.firstErr = b.firstErr
	}
	a.exhausted = a.exhausted || b.exhausted
	a.redisReads += b.redisReads
	a.lat = append(a.lat, b.lat...)
	slices.Sort(a.lat)
	for i := range a.cpu {
		a.cpu[i] += b.cpu[i]
	}
	return a
}

func (e *env) cpuPIDs(t *target) []int {
	return []int{t.p.pid, e.redisPID(), e.idp.pid, os.Getpid()}
}

// prepare sets up one flow on one target (virtual users, sessions) and
// returns the function that runs it once.
func (e *env) prepare(ctx context.Context, o options, flow string, t *target) (func(phase) (*result, error), error) {
	secret := e.secretFor(t)
	load := func(ph phase, op func(w int) error) (*result, error) {
		e.quiesce(ctx)
		if ph.sequential > 0 {
			return runSequential(ctx, ph, op), ctx.Err()
		}
		stop := func() {}
		if ph.profile {
			stop = e.startProfile(ctx, o, flow, ph, t)
		}
		r := runLoad(ctx, ph, op)
		stop()
		return r, ctx.Err()
	}
	maxVUs := max(o.concurrency, o.loginConc)
	vus := e.vus(maxVUs)
	switch flow {
	case "jwks", "discovery":
		path := "/jwks"
		if flow == "discovery" {
			path = "/.well-known/openid-configuration"
		}
		return func(ph phase) (*result, error) {
			return load(ph, func(w int) error {
				status, _, body, err := vus[w].get(t.url + path)
				if err == nil && (status != http.StatusOK || len(body) == 0) {
					err = fmt.Errorf("GET %s: status %d", path, status)
				}
				return err
			})
		}, nil
	case "login":
		return func(ph phase) (*result, error) {
			return load(ph, func(w int) error {
				_, err := vus[w].login(t, secret, nil)
				return err
			})
		}, nil
	case "token":
		vus = vus[:o.concurrency]
		if t.name != "baseline" {
			if err := e.signInAll(t, vus); err != nil {
				return nil, fmt.Errorf("sign in: %w", err)
			}
		}
		return func(ph phase) (*result, error) {
			// Codes live 60 s (S08): realmgate mints through SSO for at most
			// the run's length; the baseline mints at once as many as a run
			// at twice realmgate's last rate (at least 5,000/s) would need.
			window := ph.warmup + ph.duration
			var p *codePool
			var err error
			switch {
			case t.name == "baseline":
				rate := max(2*e.lastRate["token"], 5000)
				if ph.rate > 0 {
					rate = ph.rate * 1.2
				}
				p, err = e.mintBaseline(t, int(rate*window.Seconds())+1000)
			case ph.rate > 0:
				p, err = e.mintRealmgate(t, vus, int(ph.rate*window.Seconds()*1.2)+100, 2*window)
			default:
				p, err = e.mintRealmgate(t, vus, maxCodes, window+window/4)
			}
			if err != nil {
				return nil, fmt.Errorf("mint codes: %w", err)
			}
			return load(ph, func(w int) error {
				m, ok := p.take()
				if !ok {
					return errExhausted
				}
				_, err := vus[w].exchange(t, secret, m.code, m.verifier)
				return err
			})
		}, nil
	case "client_credentials":
		// RFC 6749 §4.4: the tenant's API client asks for a token; no
		// session, no code, no Redis on the request path.
		form := url.Values{"grant_type": {"client_credentials"}}
		return func(ph phase) (*result, error) {
			return load(ph, func(w int) error {
				status, body, err := vus[w].postTokenAs(t, benchM2MID, secret, form)
				if err == nil && (status != http.StatusOK || !bytes.Contains(body, []byte(`"access_token"`))) {
					err = fmt.Errorf("client_credentials: status %d: %.200s", status, body)
				}
				return err
			})
		}, nil
	case "refresh":
		vus = vus[:o.concurrency]
		if err := e.signInAll(t, vus); err != nil {
			return nil, fmt.Errorf("sign in: %w", err)
		}
		return func(ph phase) (*result, error) {
			return load(ph, func(w int) error {
				v := vus[w]
				if v.rt == "" {
					// The last refresh failed: its rotation may have happened
					// without the client learning the new token, and replaying
					// the old one would revoke the family (S09). Sign in again;
					// the error was counted when it happened.
					tr, err := v.login(t, secret, nil)
					if err != nil {
						return err
					}
					v.rt = tr.RefreshToken
				}
				err := v.refresh(t, secret)
				if err != nil {
					v.rt = ""
				}
				return err
			})
		}, nil
	}
	return nil, fmt.Errorf("unknown flow %q", flow)
}

// maxCodes bounds the codes minted for one token run.
const maxCodes = 400_000
