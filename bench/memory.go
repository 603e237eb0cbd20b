package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memRecord is one Redis key a sign-in wrote.
type memRecord struct {
	kind    string // ar, ul, ss, cd, cu, fam, gr
	typ     string
	length  int // STRLEN, or HLEN, ZCARD, XLEN: members
	usage   int // MEMORY USAGE ... SAMPLES 0
	lasting bool
	shared  bool // a key of the whole deployment (audit stream, signing keys)
}

// perSession are the record kinds one sign-in writes (records.go, token.go,
// logout.go, backchannel.go: ux and uy are per upstream user and session);
// any other new key is shared by all sign-ins.
var perSession = map[string]bool{"ar": true, "ul": true, "cd": true, "ss": true, "cu": true, "gr": true, "fam": true, "sx": true, "ux": true, "uy": true, "uz": true}

// appGrant are the kept record kinds that belong to one application's
// grant (its refresh-token family and the code-reuse marker), not to the
// SSO session: a user signed in to three apps has one SSO session and three
// of these.
var appGrant = map[string]bool{"fam": true, "cu": true, "gr": true}

// memReport is Redis memory per SSO session.
type memReport struct {
	records       []memRecord
	lasting       int     // bytes of the records that outlive the sign-in
	ssoSession    int     // of those, the SSO session's (session, upstream-logout index)
	grant         int     // of those, the application grant's (family, code-reuse marker)
	famAfter      int     // the family hash after refreshes
	famRefreshes  int     // how many
	bulkPerLogin  float64 // used_memory growth per sign-in over bulkLogins
	bulkLogins    int
	sessionRecord int // MEMORY USAGE of the session key alone
	steps         []int64
}

func keyKind(k string) string {
	k = strings.TrimPrefix(k, "rg:")
	kind, _, _ := strings.Cut(k, ":")
	return kind
}

// measureMemory signs one user in step by step, reading every record the
// sign-in writes as it appears, then signs many in and reads used_memory.
func measureMemory(ctx context.Context, e *env) (*memReport, error) {
	rg := e.targets("")[0]
	seen, err := e.redisKeys("rg:*")
	if err != nil {
		return nil, err
	}
	m := &memReport{}
	byKey := map[string]int{}
	inspect := func(int) {
		now, err := e.redisKeys("rg:*")
		if err != nil {
			return
		}
		for k := range now {
			if seen[k] {
				continue
			}
			seen[k] = true
			r := memRecord{kind: keyKind(k)}
			r.typ, _ = e.redisCLI("TYPE", k)
			lenCmd := map[string]string{"hash": "HLEN", "zset": "ZCARD", "stream": "XLEN"}[r.typ]
			if lenCmd == "" {
				lenCmd = "STRLEN"
			}
			s, _ := e.redisCLI(lenCmd, k)
			r.length, _ = strconv.Atoi(s)
			s, _ = e.redisCLI("MEMORY", "USAGE", k, "SAMPLES", "0")
			r.usage, _ = strconv.Atoi(s)
			byKey[k] = len(m.records)
			m.records = append(m.records, r)
		}
	}
	v := e.newVU()
	tr, err := v.login(rg, e.clientSecret, inspect)
	if err != nil {
		return nil, err
	}
	inspect(0)
	final, err := e.redisKeys("rg:*")
	if err != nil {
		return nil, err
	}
	famKey := ""
	for k, i := range byKey {
		if !perSession[m.records[i].kind] {
			m.records[i].shared = true
			continue
		}
		if final[k] {
			m.records[i].lasting = true
			m.lasting += m.records[i].usage
			if appGrant[m.records[i].kind] {
				m.grant += m.records[i].usage
			} else {
				m.ssoSession += m.records[i].usage
			}
			if m.records[i].kind == "ss" {
				m.sessionRecord = m.records[i].usage
			}
			if m.records[i].kind == "fam" {
				famKey = k
			}
		}
	}
	sort.SliceStable(m.records, func(i, j int) bool { return !m.records[i].lasting && m.records[j].lasting })
	// A refresh token family grows by one hash field per rotation.
	v.rt = tr.RefreshToken
	m.famRefreshes = 10
	for range m.famRefreshes {
		if err := v.refresh(rg, e.clientSecret); err != nil {
			return nil, err
		}
	}
	if famKey != "" {
		s, _ := e.redisCLI("MEMORY", "USAGE", famKey, "SAMPLES", "0")
		m.famAfter, _ = strconv.Atoi(s)
	}

	// Round trips of each step of one more sign-in, from Redis's read events
	// (the INFO that reads the counter is one of them).
	last := e.redisReads()
	step := func(int) {
		now := e.redisReads()
		m.steps = append(m.steps, now-last-1)
		last = now
	}
	if _, err := e.newVU().login(rg, e.clientSecret, step); err != nil {
		return nil, err
	}
	step(-1)

	// Many sign-ins: growth of used_memory per sign-in.
	m.bulkLogins = 1000
	before, _ := strconv.Atoi(e.redisInfo("memory", "used_memory"))
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	per := m.bulkLogins / 8
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := e.newVU()
			for range per {
				if _, err := v.login(rg, e.clientSecret, nil); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	time.Sleep(100 * time.Millisecond)
	after, _ := strconv.Atoi(e.redisInfo("memory", "used_memory"))
	m.bulkPerLogin = float64(after-before) / float64(m.bulkLogins)
	return m, ctx.Err()
}

func (m *memReport) print(out io.Writer) {
	fmt.Fprintln(out, "Redis memory per SSO session (one sign-in: browser -> realmgate -> upstream -> realmgate -> /token)")
	fmt.Fprintf(out, "  %-5s %-6s %8s %13s  %s\n", "key", "type", "length", "MEMORY USAGE", "")
	for _, r := range m.records {
		note := "transient (deleted during the sign-in)"
		switch {
		case r.shared:
			note = "shared by all sign-ins, not counted"
		case r.lasting:
			note = "kept"
		}
		fmt.Fprintf(out, "  %-5s %-6s %8d %13d  %s\n", r.kind, r.typ, r.length, r.usage, note)
	}
	fmt.Fprintf(out, "  kept after the sign-in: %d bytes = SSO session %d (session key alone: %d) + one application's grant %d; family after %d refreshes: %d bytes\n",
		m.lasting, m.ssoSession, m.sessionRecord, m.grant, m.famRefreshes, m.famAfter)
	fmt.Fprintf(out, "  used_memory growth over %d sign-ins: %.0f bytes per sign-in\n", m.bulkLogins, m.bulkPerLogin)
	if len(m.steps) == 4 {
		fmt.Fprintf(out, "  Redis round trips: /authorize %d, upstream %d, /callback %d, /token %d\n",
			m.steps[0], m.steps[1], m.steps[2], m.steps[3])
	}
	fmt.Fprintln(out)
}
