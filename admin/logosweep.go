package admin

// Stored logos no branding names any more are deleted after a grace
// period (branding/sweep.go, docs/branding.md): Run sweeps a bounded part
// of the logo set every LogoSweepInterval, and a change that names a logo
// its previous version did not claims it first (tryCommit), so a sweep on
// an instance still on an older state cannot delete it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/realmgate/realmgate/branding"
	"github.com/realmgate/realmgate/config"
)

// DefaultLogoSweepInterval is how often Run sweeps the stored logos when
// Options.LogoSweepInterval is zero.
const DefaultLogoSweepInterval = time.Minute

// errNotLoaded means no state was applied yet: a sweep would find every
// logo unnamed.
var errNotLoaded = errors.New("admin: tenant state not loaded yet: logos not swept")

// logoOf is the uploaded logo a branding block names, or "".
func logoOf(b *config.Branding) string {
	if b == nil {
		return ""
	}
	return b.Logo
}

// namedLogos is the set of logos the file's and st's tenants and clients
// name (their branding's logo).
func (s *Service) namedLogos(st *State) map[string]bool {
	out := map[string]bool{}
	add := func(b *config.Branding) {
		if h := logoOf(b); h != "" {
			out[h] = true
		}
	}
	for _, t := range s.files {
		add(t.Branding)
	}
	for _, c := range s.fileCl {
		add(c.Branding)
	}
	for _, t := range st.Tenants {
		add(t.Branding)
	}
	for i := range st.Clients {
		add(st.Clients[i].Branding)
	}
	if s.opts.LogosInUse != nil {
		for _, h := range s.opts.LogosInUse() {
			out[h] = true
		}
	}
	return out
}

// newlyNamedLogos lists the logos the tenants and clients of next name
// that their version in base did not (added ones included).
func newlyNamedLogos(base, next *State) []string {
	var out []string
	add := func(old, now *config.Branding) {
		if h := logoOf(now); h != "" && h != logoOf(old) {
			out = append(out, h)
		}
	}
	_ = diffSorted(base.Tenants, next.Tenants, func(t **Tenant) string { return (*t).ID },
		func(a, b **Tenant) bool { return logoOf((*a).Branding) == logoOf((*b).Branding) },
		func(old, now **Tenant) error {
			if now != nil {
				var ob *config.Branding
				if old != nil {
					ob = (*old).Branding
				}
				add(ob, (*now).Branding)
			}
			return nil
		})
	_ = diffSorted(base.Clients, next.Clients, func(c *Client) string { return c.ID },
		func(a, b *Client) bool { return logoOf(a.Branding) == logoOf(b.Branding) },
		func(old, now *Client) error {
			if now != nil {
				var ob *config.Branding
				if old != nil {
					ob = old.Branding
				}
				add(ob, now.Branding)
			}
			return nil
		})
	return out
}

// claimLogos claims the logos next names anew (branding.Claim) before
// the change is committed. A store error fails the change (retried, then
// 503): committed, it might name a logo a sweep deletes.
func (s *Service) claimLogos(ctx context.Context, base, next *State) error {
	hashes := newlyNamedLogos(base, next)
	if len(hashes) == 0 {
		return nil
	}
	if err := branding.Claim(ctx, s.rs, hashes); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// SweepLogos runs one bounded sweep of the stored logos (Run calls it
// every LogoSweepInterval): a logo that neither the file nor the API state
// applied here names is marked, and deleted once it has been unnamed for
// LogoGrace. It deletes only while the applied state is the store's newest
// (it marks and unmarks otherwise). A store error is returned (and logged
// by Run); the next sweep goes on from the same place.
func (s *Service) SweepLogos(ctx context.Context) (branding.SweepResult, error) {
	if !s.loaded.Load() {
		return branding.SweepResult{}, errNotLoaded
	}
	st := s.cur.Load().state
	head, err := s.rs.RecordsHead(ctx, stateSet)
	if err != nil {
		return branding.SweepResult{}, fmt.Errorf("admin: sweep logos: %w", err)
	}
	named := s.namedLogos(st)
	res, err := s.logos.Sweep(ctx, func(h string) bool { return named[h] }, head == st.Version)
	if res.Deleted > 0 || res.Marked > 0 {
		s.opts.Logger.Info("admin: stored logos swept", "marked", res.Marked, "deleted", res.Deleted, "unmarked", res.Unmarked, "grace", s.logoGrace())
	}
	return res, err
}

func (s *Service) logoGrace() time.Duration {
	if s.opts.LogoGrace > 0 {
		return s.opts.LogoGrace
	}
	return branding.DefaultGrace
}

// sweepLogosDue runs SweepLogos when LogoSweepInterval has passed since
// the last one (Run), logging a failure once per run of failures.
func (s *Service) sweepLogosDue(ctx context.Context, last *time.Time) {
	every := s.opts.LogoSweepInterval
	if every < 0 || (!last.IsZero() && time.Since(*last) < every) {
		return
	}
	*last = time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.SweepLogos(sctx)
	switch {
	case err == nil:
		s.sweepFailing = false
	case errors.Is(err, errNotLoaded) || ctx.Err() != nil:
	case !s.sweepFailing:
		s.sweepFailing = true
		s.opts.Logger.Warn("admin: stored logos not swept; trying again later", "err", err)
	}
}
