package users

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/realmgate/realmgate/store"
)

// Query selects and pages users. The indexed fields (UserName,
// ExternalID, Email) narrow the search through an index; Status and
// Match are checked on each candidate, which without an indexed field
// means reading every record of the tenant (in pages of MaxPageSize).
// A SCIM filter evaluator sets the indexed field of an `eq` on userName,
// externalId or emails, and the whole filter as Match.
type Query struct {
	// UserName (case-insensitive), ExternalID and Email (case-insensitive)
	// select by index when not empty.
	UserName, ExternalID, Email string
	// Status, when not empty, keeps users with that status.
	Status Status
	// Match, when not nil, keeps the users it accepts.
	Match func(*User) bool
	// StartIndex is the 1-based position of the first result (SCIM
	// startIndex); 0 means 1. Ignored when After is set.
	StartIndex int
	// After is a cursor from a previous Page.Next.
	After string
	// Count is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Count int
}

// filtered reports whether the query needs candidates checked one by one.
func (q *Query) filtered() bool { return q.Status != "" || q.Match != nil }

func (q *Query) keep(u *User) bool {
	if q.Status != "" && u.Status != q.Status {
		return false
	}
	if q.UserName != "" && !strings.EqualFold(u.UserName, q.UserName) {
		return false
	}
	if q.ExternalID != "" && u.ExternalID != q.ExternalID {
		return false
	}
	if q.Email != "" && !strings.EqualFold(u.Email, q.Email) {
		return false
	}
	return q.Match == nil || q.Match(u)
}

// Page is one page of a listing.
type Page[T any] struct {
	// Items are the results, in id order.
	Items []T
	// Total is how many results the whole query has (SCIM totalResults).
	Total int
	// StartIndex is the 1-based position of Items[0] among them.
	StartIndex int
	// Next is the cursor of the next page; empty on the last.
	Next string
}

// scanBatch is how many records a filtered listing reads per round trip.
const scanBatch = store.MaxDirList

// ListUsers returns one page of the tenant's users that q selects.
func (d *Directory) ListUsers(ctx context.Context, tenant string, q Query) (Page[*User], error) {
	if err := checkTenant(tenant); err != nil {
		return Page[*User]{}, err
	}
	size := pageSize(q.Count)
	if q.Count < 0 {
		size = 0
	}
	start := max(q.StartIndex, 1)
	// Indexed: a handful of candidates.
	var cands []*User
	indexed := true
	switch {
	case q.ExternalID != "":
		u, err := d.UserByExternalID(ctx, tenant, q.ExternalID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Page[*User]{}, err
		}
		if u != nil {
			cands = []*User{u}
		}
	case q.UserName != "":
		u, err := d.UserByUserName(ctx, tenant, q.UserName)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Page[*User]{}, err
		}
		if u != nil {
			cands = []*User{u}
		}
	case q.Email != "":
		us, err := d.UsersByEmail(ctx, tenant, q.Email, MaxPageSize)
		if err != nil {
			return Page[*User]{}, err
		}
		cands = us
	default:
		indexed = false
	}
	if indexed {
		var all []*User
		for _, u := range cands {
			if q.keep(u) {
				all = append(all, u)
			}
		}
		return pageOf(all, start, size), nil
	}
	space := userSpace(tenant)
	if !q.filtered() {
		total, err := d.st.DirCount(ctx, space)
		if err != nil {
			return Page[*User]{}, mapErr("count users", err)
		}
		recs, err := d.st.DirList(ctx, space, q.After, start-1, size)
		if err != nil {
			return Page[*User]{}, mapErr("list users", err)
		}
		items, err := decodeUsers(tenant, recs)
		if err != nil {
			return Page[*User]{}, err
		}
		p := Page[*User]{Items: items, Total: int(total), StartIndex: start}
		if q.After != "" {
			p.StartIndex = 0 // unknown with a cursor
		}
		if len(items) == size && size > 0 {
			p.Next = items[len(items)-1].ID
		}
		return p, nil
	}
	// Filtered: read every record after the cursor, count the matches,
	// keep the page.
	p := Page[*User]{StartIndex: start}
	after, seen := q.After, 0
	for {
		recs, err := d.st.DirList(ctx, space, after, 0, scanBatch)
		if err != nil {
			return Page[*User]{}, mapErr("list users", err)
		}
		for _, r := range recs {
			u, err := decodeUser(tenant, r)
			if err != nil || !q.keep(u) {
				continue
			}
			seen++
			if q.After == "" && seen < start {
				continue
			}
			if len(p.Items) < size {
				p.Items = append(p.Items, u)
			}
		}
		if len(recs) < scanBatch {
			break
		}
		after = recs[len(recs)-1].ID
	}
	p.Total = seen
	if len(p.Items) == size && size > 0 && (q.After != "" || start-1+size < seen) {
		p.Next = p.Items[len(p.Items)-1].ID
	}
	return p, nil
}

func pageOf[T interface{ comparable }](all []T, start, size int) Page[T] {
	p := Page[T]{Total: len(all), StartIndex: start}
	if start-1 < len(all) {
		end := min(len(all), start-1+size)
		p.Items = all[start-1 : end]
	}
	return p
}

// CountUsers returns how many users the tenant has.
func (d *Directory) CountUsers(ctx context.Context, tenant string) (int64, error) {
	if err := checkTenant(tenant); err != nil {
		return 0, err
	}
	n, err := d.st.DirCount(ctx, userSpace(tenant))
	return n, mapErr("count users", err)
}

// ETag is the weak entity tag of a record version (RFC 7644 §3.14).
func ETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ParseETag returns the version an ETag names, or false.
func ParseETag(tag string) (int64, bool) {
	tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64)
	return v, err == nil && v > 0
}
