package broker

import (
	"log/slog"

	"github.com/labstack/echo/v4"
)

type attrs struct {
	client, tenant, idp, subject string
}

// auditEvent writes one structured event to the audit stream (S61). It never
// carries a secret or a token.
func (s *Server) auditEvent(c echo.Context, outcome, reason string, a attrs) {
	req := c.Request()
	s.audit.LogAttrs(req.Context(), slog.LevelInfo, "signin",
		slog.String("outcome", outcome), slog.String("reason", reason),
		slog.String("tenant", a.tenant), slog.String("idp", a.idp), slog.String("subject", a.subject),
		slog.String("client", a.client), slog.String("ip", c.RealIP()), slog.String("user_agent", req.UserAgent()),
		slog.String("request_id", requestID(c)))
}
