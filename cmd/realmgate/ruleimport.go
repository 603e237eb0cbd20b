package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/realmgate/realmgate/ruleimport"
)

// maxImportBytes bounds what an import reads (a rule set, a policy, a trust export).
const maxImportBytes = 4 << 20

// readImport reads FILE, or stdin for "-".
func readImport(name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxImportBytes {
		return nil, fmt.Errorf("%s: over the %d-byte limit", name, maxImportBytes)
	}
	return b, nil
}

// importFlags are the output flags the import commands share.
type importFlags struct {
	config, tenant *string
}

func addImportFlags(fs *flag.FlagSet) importFlags {
	return importFlags{
		config: fs.String("config", "", "configuration file to write the rules into (with --tenant): prints the whole file with that tenant's rules replaced"),
		tenant: fs.String("tenant", "", "tenant whose rules the imported rules replace (with --config)"),
	}
}

// writeImport prints the converted rules (alone, or spliced into a
// configuration file), then the notes and problems on stderr as
// FILE:LINE:COL lines. The exit status is 1 when anything was not
// converted: the rules printed are then incomplete.
func writeImport(res *ruleimport.Result, src string, f importFlags, header string, stdout, stderr io.Writer) int {
	if (*f.config == "") != (*f.tenant == "") {
		fmt.Fprintln(stderr, "realmgate: --config and --tenant go together")
		return 2
	}
	var out []byte
	var err error
	if *f.config != "" {
		var cfg []byte
		if cfg, err = os.ReadFile(*f.config); err == nil {
			node, nerr := res.RulesNode()
			if nerr != nil {
				err = nerr
			} else {
				out, err = ruleimport.SpliceTenantRules(cfg, *f.tenant, node)
			}
		}
	} else {
		out, err = res.YAML(header)
	}
	if err != nil {
		fmt.Fprintln(stderr, "realmgate:", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return report(res, src, stderr)
}

// report prints the notes and problems of an import on stderr; its exit
// status is 1 when anything was not converted.
func report(res *ruleimport.Result, src string, stderr io.Writer) int {
	ruleimport.SortProblems(res.Notes)
	ruleimport.SortProblems(res.Problems)
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "%s note: %s\n", location(src, n), problemText(n))
	}
	for _, p := range res.Problems {
		fmt.Fprintf(stderr, "%s not converted: %s\n", location(src, p), problemText(p))
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(stderr, "realmgate: %s not converted; the output lacks them\n", count(len(res.Problems), "construct"))
		return 1
	}
	return 0
}

// location is FILE:LINE:COL: (or FILE: PATH: for JSON input).
func location(src string, p ruleimport.Problem) string {
	switch {
	case p.Pos.Line > 0 && p.Where != "":
		return fmt.Sprintf("%s: %s:%d:%d:", src, p.Where, p.Pos.Line, p.Pos.Col)
	case p.Pos.Line > 0:
		return fmt.Sprintf("%s:%d:%d:", src, p.Pos.Line, p.Pos.Col)
	case p.Where != "":
		return fmt.Sprintf("%s: %s:", src, p.Where)
	}
	return src + ":"
}

// problemText is the problem without its position.
func problemText(p ruleimport.Problem) string {
	p.Pos, p.Where = ruleimport.Pos{}, ""
	return p.String()
}

// cmdImportADFS is `realmgate rules import-adfs FILE`: AD FS issuance
// transform (or authorization) rules to realmgate rules.
func cmdImportADFS(args []string, stdout, stderr io.Writer) int {
	const synopsis = "rules import-adfs [--ldap-from-upstream] [--config FILE --tenant ID] RULES.txt|-"
	fs := flag.NewFlagSet("rules import-adfs", flag.ContinueOnError)
	ldap := fs.Bool("ldap-from-upstream", false, "convert LDAP attribute store queries into reading their claim types from the upstream identity")
	f := addImportFlags(fs)
	if code, done := parseFlags(fs, args, synopsis, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: realmgate "+synopsis)
		return 2
	}
	src, err := readImport(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "realmgate:", err)
		return 1
	}
	rs, perr := ruleimport.Parse(string(src))
	res := ruleimport.Convert(rs, ruleimport.Options{LDAPFromUpstream: *ldap})
	res.Problems = append(perr, res.Problems...)
	header := fmt.Sprintf("Converted from the AD FS rules in %s by `realmgate rules import-adfs`.\n"+
		"A tenant's rules: put this list under tenants[].rules (docs/adfs-migration.md).", fs.Arg(0))
	return writeImport(res, fs.Arg(0), f, header, stdout, stderr)
}

// cmdImportEntra is `realmgate rules import-entra FILE`: an Entra ID
// claims mapping policy to realmgate rules.
func cmdImportEntra(args []string, stdout, stderr io.Writer) int {
	const synopsis = "rules import-entra [--config FILE --tenant ID] POLICY.json|-"
	fs := flag.NewFlagSet("rules import-entra", flag.ContinueOnError)
	f := addImportFlags(fs)
	if code, done := parseFlags(fs, args, synopsis, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: realmgate "+synopsis)
		return 2
	}
	src, err := readImport(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "realmgate:", err)
		return 1
	}
	res, err := ruleimport.ConvertEntra(src, ruleimport.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "realmgate: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	header := fmt.Sprintf("Converted from the Entra ID claims mapping policy in %s by `realmgate rules import-entra`.\n"+
		"A tenant's rules: put this list under tenants[].rules (docs/adfs-migration.md).", fs.Arg(0))
	return writeImport(res, fs.Arg(0), f, header, stdout, stderr)
}

// cmdImportADFSTrust is `realmgate import-adfs-trust FILE`: an AD FS
// relying party trust (Get-AdfsRelyingPartyTrust ... | ConvertTo-Json
// -Depth 4) to a SAML app registration and its rules.
func cmdImportADFSTrust(args []string, stdout, stderr io.Writer) int {
	const synopsis = "import-adfs-trust --tenant ID [--client ID] [--ldap-from-upstream] [--config FILE] TRUST.json|-"
	fs := flag.NewFlagSet("import-adfs-trust", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "the tenant whose users sign in to the app (its allowed_tenants; with --config, the tenant whose rules get the app's rules)")
	client := fs.String("client", "", "the app's client id (default: from the trust's Name)")
	ldap := fs.Bool("ldap-from-upstream", false, "convert LDAP attribute store queries into reading their claim types from the upstream identity")
	cfgPath := fs.String("config", "", "configuration file to write the app and its rules into: prints the whole file")
	if code, done := parseFlags(fs, args, synopsis, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 || *tenant == "" {
		fmt.Fprintln(stderr, "usage: realmgate "+synopsis)
		return 2
	}
	src, err := readImport(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "realmgate:", err)
		return 1
	}
	tr, err := ruleimport.ConvertTrust(src, *client, *tenant, ruleimport.Options{LDAPFromUpstream: *ldap})
	if err != nil {
		fmt.Fprintf(stderr, "realmgate: %s: %v\n", fs.Arg(0), err)
		return 1
	}
	var out []byte
	if *cfgPath != "" {
		var cfg []byte
		if cfg, err = os.ReadFile(*cfgPath); err == nil {
			out, err = ruleimport.SpliceTrust(cfg, *tenant, tr)
		}
	} else {
		out, err = tr.YAML(fmt.Sprintf("Converted from the AD FS relying party trust in %s by `realmgate import-adfs-trust`.\n"+
			"The SAML app goes under clients; its rules, scoped to it (client == %q), under the top-level rules\n"+
			"or tenant %s's rules (--config does that). The app's metadata URL becomes <issuer>/saml-idp/metadata.", fs.Arg(0), tr.Client.ID, *tenant))
	}
	if err != nil {
		fmt.Fprintln(stderr, "realmgate:", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return report(tr.Rules, fs.Arg(0), stderr)
}
