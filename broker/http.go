package broker

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// maxFormBytes bounds request bodies of every endpoint but the SAML ACS,
// whose signed responses (with certificates and group lists from AD FS or
// Entra) are larger; the SAML connector applies its own tighter limits on
// the decoded XML (S45).
const (
	maxFormBytes     = 64 << 10
	maxSAMLFormBytes = 1 << 20
)

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = IPExtractor(s.cfg.TrustedProxies) // S73
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe) // metrics and the audit fallback (metrics.go), outside middleware: sees the final status
	e.Use(s.middleware)
	e.Use(s.oauthErrors) // innermost: writes a handler's *oauth.Error before the middleware above see the status
	e.GET(s.path("/.well-known/openid-configuration"), s.discovery)
	e.GET(s.path("/jwks"), s.jwks)
	e.GET(s.path("/.well-known/ssf-configuration"), s.ssfConfiguration) // caep.go
	s.accessRoutes(e)                                                   // access.go: time-bound role grants
	e.GET(s.path("/authorize"), s.authorize)
	e.POST(s.path("/authorize"), s.authorize)
	e.GET(s.path("/login"), s.loginPage)
	e.POST(s.path("/login"), s.loginSubmit)
	e.GET(s.path("/login/forget"), s.forget)
	e.POST(s.path("/tenant"), s.pickTenant)
	e.POST(s.path("/consent"), s.consentAnswer) // consent.go
	e.GET(s.path("/callback/:idp"), s.callback)
	e.POST(s.path("/callback/:idp"), s.callback)
	s.samlRoutes(e)    // /saml/:idp/acs, /saml/:idp/metadata, /saml/:idp/post
	s.samlIdPRoutes(e) // /saml-idp/...: realmgate as SAML IdP (samlidp.go)
	e.POST(s.path("/token"), s.token)
	e.POST(s.path("/par"), s.pushAuthorization) // RFC 9126 (par.go)
	s.deviceRoutes(e)                           // RFC 8628 (device.go)
	e.GET(s.path("/userinfo"), s.userinfo)
	e.POST(s.path("/userinfo"), s.userinfo)
	e.POST(s.path("/revoke"), s.revoke)
	e.POST(s.path("/introspect"), s.introspect)
	e.GET(s.path("/logout"), s.endSession)
	e.POST(s.path("/backchannel/:idp"), s.backchannel)
	e.GET(s.path("/logout/upstream"), s.upstreamLoggedOut)
	e.POST(s.path("/logout"), s.endSession)
	e.GET(s.path("/branding/:file"), s.logo) // brand.go
	e.GET(s.path("/healthz"), func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET(s.path("/readyz"), s.readyz)
	return e
}

const requestIDKey = "request_id"

// securityHeaders are set on every response; built once, not per request.
var securityHeaders = []struct {
	key   string
	value []string
}{
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"Referrer-Policy", []string{"no-referrer"}},
	{"Cache-Control", []string{"no-store"}},
	// S06: nothing we serve may be framed.
	{"Content-Security-Policy", []string{"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"}},
	{"X-Frame-Options", []string{"DENY"}},
}

// middleware sets a request id, security headers, a body limit, recovers
// panics into a 500 page, and logs each request.
func (s *Server) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		rid := randomToken(9)
		c.Set(requestIDKey, rid)
		h := c.Response().Header()
		h["X-Request-Id"] = []string{rid}
		for _, sh := range securityHeaders {
			// Canonical keys, and values whose capacity equals their length,
			// so a later Add copies instead of writing into the shared array.
			h[sh.key] = sh.value[:1:1]
		}
		req := c.Request()
		limit := int64(maxFormBytes)
		if strings.HasPrefix(req.URL.Path, s.path("/saml/")) {
			limit = maxSAMLFormBytes
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic", "request_id", rid, "path", req.URL.Path, "panic", p)
				err = s.renderError(c, http.StatusInternalServerError, "Something went wrong", "The sign-in service hit an internal error. Please try again.")
			}
		}()
		err = next(c)
		if err != nil {
			c.Error(err)
			err = nil
		}
		logEvent(req.Context(), s.log, slog.LevelInfo, "request",
			slog.String("request_id", rid), slog.String("method", req.Method),
			slog.String("path", req.URL.Path), slog.Int("status", c.Response().Status),
			slog.Duration("took", time.Since(start)))
		return nil
	}
}

func requestID(c echo.Context) string { id, _ := c.Get(requestIDKey).(string); return id }

// handleError turns errors escaping handlers (routing misses, echo binding
// errors, store failures) into readable pages without internal detail.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	switch {
	case errors.Is(err, ErrUnavailable):
		s.ops.metrics.storeError("request")
		s.log.Error("store unavailable", "request_id", requestID(c), "err", err)
		_ = s.unavailable(c)
	case errors.As(err, &he):
		title := "Invalid request"
		switch he.Code {
		case http.StatusNotFound:
			title = "Page not found"
		case http.StatusMethodNotAllowed:
			title = "Method not allowed"
		}
		_ = s.renderError(c, he.Code, title, "The address you followed is not valid here.")
	default:
		s.log.Error("unhandled error", "request_id", requestID(c), "err", err)
		_ = s.renderError(c, http.StatusInternalServerError, "Something went wrong", "Please try again.")
	}
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.store.Ping(c.Request().Context()); err != nil {
		return c.String(http.StatusServiceUnavailable, "store unreachable\n")
	}
	if err := s.readiness.check(); err != nil {
		return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// IPExtractor is the one rule by which every listener (the broker's and the
// admin API's) establishes the client IP written to audit events and used by
// rate limits and ip_ranges (SECURITY S73): the peer address of the
// connection; when that peer is inside one of trusted, the right-most
// X-Forwarded-For address that is not itself a trusted proxy. X-Real-IP is
// never read, and loopback, link-local and private peers are not trusted
// unless trusted names them.
func IPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(netipToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// TrustedProxies returns the proxies whose X-Forwarded-For this server
// believes (Config.TrustedProxies), for the other listeners of the process
// to apply the same rule (IPExtractor).
func (s *Server) TrustedProxies() []netip.Prefix { return slices.Clone(s.cfg.TrustedProxies) }

func netipToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
