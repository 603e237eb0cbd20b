package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/realmgate/realmgate/config"
)

func TestDeviceFlow_Parse(t *testing.T) {
	c, err := Parse("dev.yaml", []byte(opsBase+`device_authorization:
  code_lifetime: 15m
  interval: 3s
  user_codes_per_ip: 5/10m
clients:
  - id: cli
    allowed_tenants: ["*"]
    grant_types: [urn:ietf:params:oauth:grant-type:device_code, refresh_token]
`), lookupMap(nil))
	if err != nil {
		t.Fatalf("Parse: %v (a device client needs no redirect URI)", err)
	}
	d := c.DeviceAuthorization
	if d.CodeLifetime.Duration() != 15*time.Minute || d.Interval.Duration() != 3*time.Second || d.UserCodesPerIP.Limit != 5 {
		t.Errorf("device_authorization = %+v, want 15m, 3s, 5/10m", d)
	}
}

func TestDeviceFlow_Problems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, field, msg string
	}{
		{"lifetime too short", "device_authorization:\n  code_lifetime: 10s\n", "device_authorization.code_lifetime", "out of range"},
		{"interval too long", "device_authorization:\n  interval: 2m\n", "device_authorization.interval", "out of range"},
		{"guessing unbounded", "device_authorization:\n  user_codes_per_ip: \"off\"\n", "device_authorization.user_codes_per_ip", "cannot be off"},
		{"code client without redirect", `clients:
  - id: both
    allowed_tenants: ["*"]
    grant_types: [authorization_code, urn:ietf:params:oauth:grant-type:device_code]
`, "clients[0].redirect_uris", "at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("dev.yaml", []byte(opsBase+tc.yaml), lookupMap(nil))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse = %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Errorf("Parse problems = %v, want %s: ...%s...", err, tc.field, tc.msg)
		})
	}
}
