package users

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/realmgate/realmgate/store"
)

// The stored form is binary (usercodec.go), times in Unix seconds, with
// nothing the store already keeps (id, version) or the sign-in stamp
// carries (last sign-in, last IP). Records of earlier releases are compact
// JSON with short member names (userWire) and are still read.

type userWire struct {
	Sub   string                     `json:"s,omitempty"`
	Ext   string                     `json:"x,omitempty"`
	UN    string                     `json:"un,omitempty"`
	Em    string                     `json:"e,omitempty"`
	EV    bool                       `json:"ev,omitempty"`
	NF    string                     `json:"nf,omitempty"`
	NG    string                     `json:"ng,omitempty"`
	NL    string                     `json:"nl,omitempty"`
	DN    string                     `json:"dn,omitempty"`
	St    Status                     `json:"st,omitempty"` // empty: active
	L     [][2]string                `json:"l,omitempty"`
	G     [][2]string                `json:"g,omitempty"`
	A     map[string]any             `json:"a,omitempty"`
	X     map[string]json.RawMessage `json:"xa,omitempty"`
	First int64                      `json:"f,omitempty"`
	C     int64                      `json:"c"`
	U     int64                      `json:"u"`
	Gen   int64                      `json:"r,omitempty"`
	Risk  *Risk                      `json:"rk,omitempty"`
	Prov  bool                       `json:"p,omitempty"`
	UG    []string                   `json:"ug,omitempty"`
}

type groupWire struct {
	DN  string                     `json:"dn"`
	Ext string                     `json:"x,omitempty"`
	X   map[string]json.RawMessage `json:"xa,omitempty"`
	C   int64                      `json:"c"`
	U   int64                      `json:"u"`
}

// Index names of user and group records.
const (
	ixLink     = "l"  // "<idp> <subject>", unique
	ixExternal = "x"  // externalId, unique
	ixUserName = "n"  // lower(userName), unique
	ixEmail    = "e"  // lower(email), shared
	ixGroup    = "g"  // group id, shared by many (wide): the group's members
	ixGroupDN  = "dn" // lower(displayName) of a group, shared
)

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func linkValue(idp, subject string) string { return idp + " " + subject }

// userSpace and groupSpace are the store spaces of a tenant.
func userSpace(tenant string) string  { return tenant + "/u" }
func groupSpace(tenant string) string { return tenant + "/g" }

func checkTenant(tenant string) error {
	if err := store.CheckDirSpace(userSpace(tenant)); err != nil || tenant == "" || strings.Contains(tenant, "/") {
		return fmt.Errorf("%w: tenant %q", ErrInvalid, tenant)
	}
	return nil
}

// encodeUser returns the record of u with its index entries, in the form
// d writes: binary, or JSON (SetJSONRecords).
func (d *Directory) encodeUser(u *User) (store.DirRecord, error) {
	if !d.jsonRecords.Load() {
		return encodeUser(u)
	}
	rec := userEntries(u)
	b, err := encodeUserJSON(u)
	rec.Data = b
	return rec, err
}

// encodeUser returns the record of u, in its binary form (usercodec.go),
// with its index entries.
func encodeUser(u *User) (store.DirRecord, error) {
	rec := userEntries(u)
	b, err := appendUserRecord(make([]byte, 0, 256), u)
	if err != nil {
		return rec, err
	}
	rec.Data = b
	return rec, nil
}

// userEntries returns the record of u without its data: id and index
// entries.
func userEntries(u *User) store.DirRecord {
	rec := store.DirRecord{ID: u.ID}
	for _, l := range u.Links {
		rec.Unique = append(rec.Unique, store.IndexEntry{Index: ixLink, Value: linkValue(l.IdP, l.Subject)})
	}
	for _, g := range u.Groups {
		rec.Wide = append(rec.Wide, store.IndexEntry{Index: ixGroup, Value: g.ID})
	}
	if u.ExternalID != "" {
		rec.Unique = append(rec.Unique, store.IndexEntry{Index: ixExternal, Value: u.ExternalID})
	}
	if u.UserName != "" {
		rec.Unique = append(rec.Unique, store.IndexEntry{Index: ixUserName, Value: strings.ToLower(u.UserName)})
	}
	if u.Email != "" {
		rec.Multi = append(rec.Multi, store.IndexEntry{Index: ixEmail, Value: strings.ToLower(u.Email)})
	}
	return rec
}

// encodeUserJSON is the JSON form records had before the binary one,
// which earlier releases read (Directory.SetJSONRecords).
func encodeUserJSON(u *User) ([]byte, error) {
	w := userWire{Sub: u.Subject, Ext: u.ExternalID, UN: u.UserName, Em: u.Email, EV: u.EmailVerified,
		NF: u.Name.Formatted, NG: u.Name.GivenName, NL: u.Name.FamilyName, DN: u.DisplayName,
		A: u.Attributes, X: u.Extra, First: unix(u.FirstSignIn), C: unix(u.Created), U: unix(u.Updated), Gen: u.Generation,
		Prov: u.Provisioned, UG: u.UpstreamGroups, Risk: u.Risk}
	if u.Status != StatusActive {
		w.St = u.Status
	}
	for _, l := range u.Links {
		w.L = append(w.L, [2]string{l.IdP, l.Subject})
	}
	for _, g := range u.Groups {
		w.G = append(w.G, [2]string{g.ID, g.Display})
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return b, nil
}

// decodeUser reads a user record in either stored form.
func decodeUser(tenant string, rec store.DirRecord) (*User, error) {
	if len(rec.Data) > 0 && rec.Data[0] == userV1 {
		u := &User{ID: rec.ID, Tenant: tenant, Version: rec.Version}
		if err := decodeUserRecord(rec.Data[1:], u); err != nil {
			return nil, fmt.Errorf("users: undecodable record %s/%s: %w", tenant, rec.ID, err)
		}
		if u.Status == "" {
			u.Status = StatusActive
		}
		u.LastSignIn, u.LastIP = parseStamp(rec.Stamp)
		return u, nil
	}
	var w userWire
	if err := json.Unmarshal(rec.Data, &w); err != nil {
		return nil, fmt.Errorf("users: undecodable record %s/%s: %w", tenant, rec.ID, err)
	}
	u := &User{ID: rec.ID, Tenant: tenant, Subject: w.Sub, ExternalID: w.Ext, UserName: w.UN, Email: w.Em,
		EmailVerified: w.EV, Name: Name{Formatted: w.NF, GivenName: w.NG, FamilyName: w.NL}, DisplayName: w.DN,
		Status: w.St, Attributes: w.A, Extra: w.X, FirstSignIn: fromUnix(w.First), Created: fromUnix(w.C),
		Updated: fromUnix(w.U), Version: rec.Version, Generation: w.Gen, Provisioned: w.Prov, UpstreamGroups: w.UG,
		Risk: w.Risk}
	if u.Status == "" {
		u.Status = StatusActive
	}
	for _, l := range w.L {
		u.Links = append(u.Links, Link{IdP: l[0], Subject: l[1]})
	}
	for _, g := range w.G {
		u.Groups = append(u.Groups, GroupRef{ID: g[0], Display: g[1]})
	}
	u.LastSignIn, u.LastIP = parseStamp(rec.Stamp)
	return u, nil
}

// stamp is the volatile part of a record: "<unix seconds> <ip>".
func stamp(at time.Time, ip string) []byte {
	if _, err := netip.ParseAddr(ip); err != nil {
		ip = ""
	}
	return []byte(strconv.FormatInt(at.Unix(), 10) + " " + ip)
}

func parseStamp(b []byte) (time.Time, string) {
	ts, ip, _ := strings.Cut(string(b), " ")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, ""
	}
	return fromUnix(n), ip
}

func encodeGroup(g *Group) (store.DirRecord, error) {
	w := groupWire{DN: g.DisplayName, Ext: g.ExternalID, X: g.Extra, C: unix(g.Created), U: unix(g.Updated)}
	rec := store.DirRecord{ID: g.ID}
	if g.ExternalID != "" {
		rec.Unique = append(rec.Unique, store.IndexEntry{Index: ixExternal, Value: g.ExternalID})
	}
	if g.DisplayName != "" {
		rec.Multi = append(rec.Multi, store.IndexEntry{Index: ixGroupDN, Value: strings.ToLower(g.DisplayName)})
	}
	b, err := json.Marshal(w)
	if err != nil {
		return rec, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	rec.Data = b
	return rec, nil
}

func decodeGroup(tenant string, rec store.DirRecord) (*Group, error) {
	var w groupWire
	if err := json.Unmarshal(rec.Data, &w); err != nil {
		return nil, fmt.Errorf("users: undecodable group %s/%s: %w", tenant, rec.ID, err)
	}
	return &Group{ID: rec.ID, Tenant: tenant, DisplayName: w.DN, ExternalID: w.Ext, Extra: w.X,
		Created: fromUnix(w.C), Updated: fromUnix(w.U), Version: rec.Version}, nil
}

// entriesOf returns the record of u as stored, reduced to what an update
// or a delete of it needs: id, version and index entries
// (store.DirRecord.Replaces).
func entriesOf(u *User) *store.DirRecord {
	rec := userEntries(u)
	return &store.DirRecord{ID: u.ID, Version: u.Version, Unique: rec.Unique, Multi: rec.Multi, Wide: rec.Wide}
}

// groupEntriesOf is entriesOf for a group.
func groupEntriesOf(g *Group) *store.DirRecord {
	rec, _ := encodeGroup(g)
	return &store.DirRecord{ID: g.ID, Version: g.Version, Unique: rec.Unique, Multi: rec.Multi, Wide: rec.Wide}
}

// holds reports whether u holds the unique index entry k: a store finds
// a record by a digest of a long value, and a lookup checks the record it
// got.
func (u *User) holds(k store.IndexEntry) bool {
	switch k.Index {
	case ixLink:
		for _, l := range u.Links {
			if linkValue(l.IdP, l.Subject) == k.Value {
				return true
			}
		}
	case ixExternal:
		return u.ExternalID == k.Value
	case ixUserName:
		return strings.ToLower(u.UserName) == k.Value
	}
	return false
}
