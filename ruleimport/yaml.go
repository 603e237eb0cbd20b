package ruleimport

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// RulesNode is the rules as a YAML sequence, each rule with its comment.
func (r *Result) RulesNode() (*yaml.Node, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, rule := range r.Rules {
		var n yaml.Node
		if err := n.Encode(rule); err != nil {
			return nil, fmt.Errorf("ruleimport: encoding rule %q: %w", rule.Name, err)
		}
		escapeDollars(&n)
		n.HeadComment = comment(r.Comments[rule.Name])
		seq.Content = append(seq.Content, &n)
	}
	return seq, nil
}

// escapeDollars doubles every "$" of the values (not the keys) under n:
// the configuration loader expands ${VAR} in values and reads "$$" as "$"
// (regexReplace's ${user} must reach the rule as it is).
func escapeDollars(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = strings.ReplaceAll(n.Value, "$", "$$")
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			escapeDollars(n.Content[i])
		}
	default:
		for _, c := range n.Content {
			escapeDollars(c)
		}
	}
}

// comment turns text into YAML comment lines. Text from the input is
// made valid UTF-8 and loses the characters YAML reads as line breaks or
// refuses (\r, NEL, U+2028, U+2029, other controls), so that nothing of it
// can end the comment.
func comment(s string) string {
	if s == "" {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff':
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\ufffd"))
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("# "+l, " ")
	}
	return strings.Join(lines, "\n")
}

// YAML renders the result as a YAML document `rules: [...]`, with header
// (one comment line per line) on top and, as comments at the end, every
// problem.
func (r *Result) YAML(header string) ([]byte, error) {
	seq, err := r.RulesNode()
	if err != nil {
		return nil, err
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "rules"}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{key, seq}}
	if len(seq.Content) == 0 {
		seq.Style = yaml.FlowStyle
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}, HeadComment: comment(header)}
	if len(r.Problems) > 0 {
		doc.FootComment = problemsComment(r.Problems)
	}
	out, err := encode(doc)
	if err == nil && len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out, err
}

func encode(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("ruleimport: encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("ruleimport: encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// SpliceTenantRules returns the configuration file src with the rules of
// tenant replaced by rules (comments elsewhere in the file are kept).
func SpliceTenantRules(src []byte, tenant string, rules *yaml.Node) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("ruleimport: reading the configuration: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("ruleimport: the configuration is not a YAML mapping")
	}
	tenants := mapValue(doc.Content[0], "tenants")
	if tenants == nil || tenants.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("ruleimport: the configuration has no tenants list")
	}
	for _, t := range tenants.Content {
		if t.Kind != yaml.MappingNode {
			continue
		}
		if id := mapValue(t, "id"); id == nil || id.Value != tenant {
			continue
		}
		setMapValue(t, "rules", rules)
		return encode(&doc)
	}
	return nil, fmt.Errorf("ruleimport: the configuration has no tenant %q", tenant)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// clientNode encodes a client with "$" escaped for the loader.
func clientNode(cl any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(cl); err != nil {
		return nil, fmt.Errorf("ruleimport: encoding the client: %w", err)
	}
	escapeDollars(&n)
	return &n, nil
}

// YAML renders a converted trust as a configuration fragment: the client
// under clients and its rules (scoped to it) under the top-level rules.
func (t *TrustResult) YAML(header string) ([]byte, error) {
	cn, err := clientNode(t.Client)
	if err != nil {
		return nil, err
	}
	seq, err := t.Rules.RulesNode()
	if err != nil {
		return nil, err
	}
	if len(seq.Content) == 0 {
		seq.Style = yaml.FlowStyle
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "clients"},
		{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{cn}},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "rules"},
		seq,
	}}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}, HeadComment: comment(header)}
	if len(t.Rules.Problems) > 0 {
		doc.FootComment = problemsComment(t.Rules.Problems)
	}
	out, err := encode(doc)
	if err == nil && len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out, err
}

func problemsComment(problems []Problem) string {
	var b strings.Builder
	b.WriteString("NOT CONVERTED (what each line names is missing above):\n")
	ps := append([]Problem(nil), problems...)
	SortProblems(ps)
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return comment(strings.TrimRight(b.String(), "\n"))
}

// SpliceTrust returns the configuration file src with the trust's client
// added to clients (replacing a client of the same id) and its rules
// appended to tenant's rules (replacing the rules an earlier import of
// the same client wrote, whose names start with "<client id>: ").
func SpliceTrust(src []byte, tenant string, t *TrustResult) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("ruleimport: reading the configuration: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("ruleimport: the configuration is not a YAML mapping")
	}
	root := doc.Content[0]
	cn, err := clientNode(t.Client)
	if err != nil {
		return nil, err
	}
	clients := mapValue(root, "clients")
	if clients == nil || clients.Kind != yaml.SequenceNode {
		clients = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		setMapValue(root, "clients", clients)
	}
	replaced := false
	for i, c := range clients.Content {
		if id := mapValue(c, "id"); c.Kind == yaml.MappingNode && id != nil && id.Value == t.Client.ID {
			clients.Content[i] = cn
			replaced = true
		}
	}
	if !replaced {
		clients.Content = append(clients.Content, cn)
	}
	tenants := mapValue(root, "tenants")
	if tenants == nil || tenants.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("ruleimport: the configuration has no tenants list")
	}
	seq, err := t.Rules.RulesNode()
	if err != nil {
		return nil, err
	}
	for _, tn := range tenants.Content {
		if tn.Kind != yaml.MappingNode {
			continue
		}
		if id := mapValue(tn, "id"); id == nil || id.Value != tenant {
			continue
		}
		rules := mapValue(tn, "rules")
		if rules == nil || rules.Kind != yaml.SequenceNode {
			rules = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			setMapValue(tn, "rules", rules)
		}
		kept := rules.Content[:0]
		for _, r := range rules.Content {
			if name := mapValue(r, "name"); name != nil && strings.HasPrefix(name.Value, t.Client.ID+": ") {
				continue
			}
			kept = append(kept, r)
		}
		rules.Content = append(kept, seq.Content...)
		rules.Style = 0
		return encode(&doc)
	}
	return nil, fmt.Errorf("ruleimport: the configuration has no tenant %q", tenant)
}
