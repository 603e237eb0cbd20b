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

// cmdImportADFSTrust is `realmgate import-adfs-trust FILE`.
func cmdImportADFSTrust(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "realmgate: import-adfs-trust: not yet")
	return 1
}
