package deploydb

import (
	"errors"
	"net/url"
	"regexp"
	"testing"
	"time"
)

// The regular expressions of the CHECK constraints in schema.hcl: what the
// database accepts. The Go validation must agree with them exactly.
var (
	labelCheck  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	targetCheck = regexp.MustCompile(`^[a-z0-9]([-.a-z0-9]{0,61}[a-z0-9])?$`)
)

func FuzzNames(f *testing.F) {
	for _, s := range []string{"", "a", "api", "-a", "a-", "A", "a.b", "a_b", "eu-west-1", "x.y.z", "é", "a\x00", "\xff",
		"0123456789012345678901234567890123456789012345678901234567890123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validLabel(s), labelCheck.MatchString(s); got != want {
			t.Fatalf("validLabel(%q) = %v, the CHECK says %v", s, got, want)
		}
		if got, want := validTarget(s), targetCheck.MatchString(s); got != want {
			t.Fatalf("validTarget(%q) = %v, the CHECK says %v", s, got, want)
		}
		if err := checkName("op", "app name", s); (err == nil) != validLabel(s) || err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("checkName(%q) = %v", s, err)
		}
		if err := checkTarget("op", s); (err == nil) != validTarget(s) || err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("checkTarget(%q) = %v", s, err)
		}
		if err := checkSourceVersion("op", s); err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("checkSourceVersion(%q) = %v", s, err)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	c := cursorCodec{secret: defaultCursorSecret}
	scope := scopeOf("builds", "1")
	good := c.encode(scope, position{at: time.Date(2026, 11, 22, 1, 2, 3, 456000, time.UTC), id: 42})
	for _, s := range []string{"", good, good + "A", good[:len(good)-1], "AAAA", "!!!!", c.encode(scopeOf("other"), position{id: 1})} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos, err := c.decode("op", scope, s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("decode(%q): %v, want ErrInvalidArgument", s, err)
			}
			return
		}
		// Only a cursor this codec signed for this scope is accepted, and it
		// is the canonical encoding of what it decodes to.
		if again := c.encode(scope, pos); again != s {
			t.Fatalf("decode(%q) accepted a non-canonical cursor (re-encodes to %q)", s, again)
		}
	})
}

// FuzzParseDeploymentFilter feeds arbitrary parameter values to the filter
// parser: it must never panic, must refuse with ErrInvalidArgument only,
// and whatever it accepts must select one of the whitelisted orders and
// directions (the only identifiers that influence which SQL runs).
func FuzzParseDeploymentFilter(f *testing.F) {
	f.Add("deployed", "", "finished_at", "asc", "2026-01-01T00:00:00Z", "", "", "")
	f.Add("", "production", "", "", "", "", "", "")
	f.Add("", "", "updated_at", "desc", "", "", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00+02:00")
	f.Add("in_progress", "", "", "", "", "", "", "")
	f.Add("failed", "staging", "", "", "", "", "", "")
	f.Add("", "", "id; DROP TABLE apps", "", "", "", "", "")
	f.Add("", "", "finished_at", "", "", "99999-01-01T00:00:00Z", "", "")
	f.Fuzz(func(t *testing.T, status, env, order, dir, fa, fb, ua, ub string) {
		v := url.Values{}
		for k, s := range map[string]string{"status": status, "environment": env, "order_by": order, "sort": dir,
			"finished_after": fa, "finished_before": fb, "updated_after": ua, "updated_before": ub} {
			if s != "" {
				v.Set(k, s)
			}
		}
		flt, err := ParseDeploymentFilter(v)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("ParseDeploymentFilter(%v): %v, want ErrInvalidArgument", v, err)
			}
			return
		}
		flt.AppID = 1
		l, err := flt.validate("op")
		if err != nil {
			t.Fatalf("accepted filter %+v fails validation: %v", flt, err)
		}
		switch l.f.OrderBy {
		case OrderByCreatedAt, OrderByUpdatedAt, OrderByFinishedAt:
		default:
			t.Fatalf("order %q reached the query choice", l.f.OrderBy)
		}
		if l.f.Sort != SortAsc && l.f.Sort != SortDesc {
			t.Fatalf("sort %q reached the query choice", l.f.Sort)
		}
		if l.f.Status != "" && !l.f.Status.Valid() || l.f.Environment != "" && !validLabel(l.f.Environment) {
			t.Fatalf("unchecked value accepted: %+v", l.f)
		}
		if !l.start.Before(l.end) || l.start.Before(timeFloor) || l.end.After(timeCeil) {
			t.Fatalf("range [%s, %s) accepted", l.start, l.end)
		}
		if l.start.Nanosecond()%1000 != 0 || l.end.Nanosecond()%1000 != 0 {
			t.Fatalf("range [%s, %s) is not in whole microseconds", l.start, l.end)
		}
	})
}

func TestParseDeploymentFilter(t *testing.T) {
	f, err := ParseDeploymentFilter(url.Values{"status": {"deployed"}, "order_by": {"finished_at"}, "sort": {"asc"},
		"finished_after": {"2026-01-02T03:04:05Z"}})
	if err != nil || f.Status != DeploymentDeployed || f.OrderBy != OrderByFinishedAt || f.Sort != SortAsc ||
		!f.FinishedAfter.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("got %+v, %v", f, err)
	}
	for _, bad := range []url.Values{
		{"per_page": {"10"}},
		{"status": {"deployed", "failed"}},
		{"finished_after": {"yesterday"}},
		{"finished_after": {"2026-01-02T03:04:05Z"}}, // needs order_by=finished_at
		{"order_by": {"name"}},
		{"updated_before": {"2026-01-01T00:00:00Z"}, "order_by": {"updated_at"}, "updated_after": {"2026-02-01T00:00:00Z"}},
		{"finished_before": {"10000-01-01T00:00:00Z"}, "order_by": {"finished_at"}, "status": {"failed"}},
	} {
		if _, err := ParseDeploymentFilter(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseDeploymentFilter(%v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
