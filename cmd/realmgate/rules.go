package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/realmgate/realmgate/claims"
	"github.com/realmgate/realmgate/config"
	"github.com/realmgate/realmgate/internal/assemble"
	"github.com/realmgate/realmgate/realm"
	"github.com/realmgate/realmgate/transform"
)

// cmdRules is `realmgate rules test`: the what-if tester. It runs the
// sign-in's claims pipeline (claims.Pipeline: standard claims, the tenant's
// rules with global first, the email guard) over a sample upstream identity,
// a JSON object of claims mapped as claims.FromUpstream says, and prints
// the output claims and what each rule did.
func cmdRules(args []string, stdout, stderr io.Writer) int {
	const synopsis = "rules test --config FILE --tenant ID [--idp ID] [--client ID] [--signals SIGNALS.json] IDENTITY.json|-"
	const importSynopsis = "\n       realmgate rules import-adfs [flags] RULES.txt|-\n       realmgate rules import-entra [flags] POLICY.json|-"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, "usage: realmgate "+synopsis+importSynopsis)
		return 0
	}
	if len(args) > 0 {
		switch args[0] {
		case "import-adfs":
			return cmdImportADFS(args[1:], stdout, stderr) // ruleimport.go
		case "import-entra":
			return cmdImportEntra(args[1:], stdout, stderr)
		}
	}
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: realmgate "+synopsis+importSynopsis)
		return 2
	}
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	path := fs.String("config", "realmgate.yaml", "configuration file")
	tenant := fs.String("tenant", "", "tenant whose rules run")
	idp := fs.String("idp", "", "IdP the identity came from (default: the tenant's first)")
	client := fs.String("client", "", "client the user signs in to")
	signals := fs.String("signals", "", "JSON object of sample sign-in signals: conditional access policies decide them (rulesaccess.go)")
	if code, done := parseFlags(fs, args[1:], synopsis, stdout, stderr); done {
		return code
	}
	if *tenant == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: realmgate "+synopsis)
		return 2
	}
	cfg, err := loadForRules(*path, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	t := cfg.Tenant(*tenant)
	if t == nil {
		fmt.Fprintf(stderr, "realmgate: no tenant %q in %s\n", *tenant, *path)
		return 1
	}
	if *idp == "" && len(t.Providers) > 0 {
		*idp = t.Providers[0].ID
	}
	var raw []byte
	if fs.Arg(0) == "-" {
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	} else {
		raw, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var upstream map[string]any
	if err := json.Unmarshal(raw, &upstream); err != nil {
		fmt.Fprintf(stderr, "realmgate: %s: the identity must be a JSON object of upstream claims or attributes: %v\n", fs.Arg(0), err)
		return 1
	}
	eng, err := transform.Compile(assemble.Rules(cfg.Rules), assemble.Rules(t.Rules), transform.Options{Tenant: t.ID})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	domains, err := verifiedDomains(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The sign-in's own pipeline (standard claims, rules, email guard S52).
	res, err := claims.Pipeline{Rules: eng, Domains: domains}.Explain(context.Background(), claims.Request{
		Identity: claims.FromUpstream(upstream), Tenant: t.ID, IdP: *idp, Client: *client})
	for _, st := range res.Trace {
		scope := "tenant"
		if st.Global {
			scope = "global"
		}
		switch {
		case st.Err != "":
			fmt.Fprintf(stdout, "rule %q (%s): error: %v\n", st.Rule, scope, st.Err)
		case !st.Matched:
			fmt.Fprintf(stdout, "rule %q (%s): condition false, skipped\n", st.Rule, scope)
		default:
			fmt.Fprintf(stdout, "rule %q (%s): applied\n", st.Rule, scope)
		}
		for _, ch := range st.Changes {
			fmt.Fprintf(stdout, "    %s %s: %s -> %s\n", ch.Action, ch.Claim, show(ch.Before), show(ch.After))
		}
		if st.Denied != "" {
			fmt.Fprintf(stdout, "    DENY: %s\n", st.Denied)
		}
		if st.Stopped {
			fmt.Fprintln(stdout, "    stop")
		}
	}
	var denied *transform.DeniedError
	switch {
	case errors.As(err, &denied):
		fmt.Fprintf(stdout, "result: DENIED by rule %q: %s\n", denied.Rule, denied.Message)
		return 1
	case err != nil:
		fmt.Fprintf(stdout, "result: FAILED (the sign-in would be refused): %v\n", err)
		return 1
	}
	keys := make([]string, 0, len(res.Claims))
	for k := range res.Claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(stdout, "result: claims")
	for _, k := range keys {
		fmt.Fprintf(stdout, "    %s: %s\n", k, show(res.Claims[k]))
	}
	if *signals != "" {
		switch denied, ok := accessTest(cfg, t, *client, *signals, stdout, stderr); {
		case !ok:
			return 1
		case denied:
			return 1
		}
	}
	return 0
}

// unsetPlaceholder stands for an environment variable that is not set when
// `rules test` loads a file: long enough for every length check, and
// visibly not a real secret.
const unsetPlaceholder = "unset-environment-variable-placeholder-for-rules-test"

// loadForRules loads the configuration at path for `rules test`. Secrets
// play no part in rules, so a ${VAR} that is not set does not stop it: it
// stands for a placeholder, with one warning per variable on stderr.
func loadForRules(path string, stderr io.Writer) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	warned := map[string]bool{}
	lookup := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		if !warned[name] {
			warned[name] = true
			fmt.Fprintf(stderr, "warning: environment variable %s is not set; rules test does not need it and uses a placeholder\n", name)
		}
		return unsetPlaceholder, true
	}
	return config.Parse(path, data, lookup)
}

// verifiedDomains is the file's tenants and their verified domains, which
// the email guard (S52) checks a sample identity's email against.
func verifiedDomains(cfg *config.Config) (*realm.Resolver, error) {
	tenants := make([]realm.Tenant, 0, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		tenants = append(tenants, realm.Tenant{ID: t.ID, Name: t.Name, Domains: t.Domains, Default: t.Default})
	}
	return realm.New(tenants, realm.Options{})
}

func show(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
