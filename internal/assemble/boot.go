package assemble

import (
	"github.com/realmgate/realmgate/broker"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// Boot is what BrokerConfig built of the file's tenants (KeepBoot): the
// realm index, the IdPs with their connectors, the engines, policies and
// memberships the broker serves from its start. The admin API's compiler
// starts from it (WithBoot) instead of compiling every file tenant a
// second time: at 100k file tenants that second compilation was 423 MB
// of a serve's live heap and seconds of its startup (docs/performance.md).
type Boot struct {
	file     *config.Config // what it was built from
	tenants  int            // len(file.Tenants) then
	res      *realm.Resolver
	idps     []broker.IdP
	rules    map[string]*transform.Engine
	policies map[string]broker.TenantPolicy
	members  []broker.Membership
}

// KeepBoot makes BrokerConfig keep in b what it built of the file's
// tenants, for the admin API's compiler (WithBoot). b holds what the
// broker holds, nothing more; the last successful BrokerConfig fills it.
func KeepBoot(b *Boot) Option {
	return func(bl *Builder) { bl.boot = b }
}

// keep records bc's tenant objects, built from cfg, in b.
func (b *Boot) keep(cfg *config.Config, bc *broker.Config) {
	*b = Boot{file: cfg, tenants: len(cfg.Tenants), res: bc.Resolver, idps: bc.IdPs, rules: bc.Rules,
		policies: bc.Policies, members: bc.Memberships}
}

// builtFrom reports whether b holds what BrokerConfig built of file's
// tenants as they are now.
func (b *Boot) builtFrom(file *config.Config) bool {
	return b != nil && b.res != nil && b.file == file && b.tenants == len(file.Tenants)
}

// CompilerOption changes how NewCompiler's compiler starts.
type CompilerOption func(*Compiler)

// WithBoot makes the compiler start from what BrokerConfig built of the
// file's tenants (KeepBoot) instead of compiling them again: the file's
// tenants are compiled once, and the admin API's first compilation hands
// the broker the very connectors (with their fetched discovery documents),
// engines and realm index it already serves. A b not filled from the
// compiler's file configuration is ignored (the file's tenants are then
// compiled by the compiler, as without it).
func WithBoot(b *Boot) CompilerOption {
	return func(ac *Compiler) { ac.boot = b }
}
