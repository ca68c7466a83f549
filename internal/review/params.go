package review

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// value is a representative value of one query parameter.
type value struct {
	V    any
	Note string // where the value comes from, for the report
	// Fallback is set when only the parameter's type chose the value: the
	// report asks the author to add a real one.
	Fallback bool
}

func (v value) String() string {
	switch x := v.V.(type) {
	case nil:
		return "NULL"
	case string:
		return "'" + x + "'"
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04Z")
	case []string:
		return "{" + strings.Join(x, ",") + "}"
	default:
		return fmt.Sprint(x)
	}
}

// The first page of a keyset list starts after these sentinels, as the
// service's first pages do.
var (
	firstPageDesc = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	firstPageAsc  = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	// rangeAfter and rangeBefore bound the ranged list queries: a
	// three-month window ending a month before the seed's epoch.
	rangeAfter  = seedEpoch.AddDate(0, 0, -120)
	rangeBefore = seedEpoch.AddDate(0, 0, -30)
)

// pageSize is what the service passes for a page of 50: one more row, to
// know whether there is a next page.
const pageSize = 51

// queryValues are the values of parameters whose meaning depends on the
// query (key "Query.param"). Mutating queries need rows their statement
// accepts: EXPLAIN ANALYZE runs them (and rolls back), so a value that
// breaks a constraint would fail the review instead of showing a plan.
var queryValues = map[string]func(s *sample) value{
	"CreateApp.name": func(*sample) value { return value{V: "review-new-app", Note: "a new name"} },
	"DeleteApp.id":   func(s *sample) value { return value{V: s.SmallApp, Note: "a small app (cascades to its rows)"} },
	// DeleteApp's transaction locks the app and its operations first: the
	// same small app.
	"LockAppForDelete.id": func(s *sample) value { return value{V: s.SmallApp, Note: "the app DeleteApp deletes"} },
	"LockAppOperations.app_id": func(s *sample) value {
		return value{V: s.SmallApp, Note: "the app DeleteApp deletes"}
	},
	"GetAppByName.name": func(*sample) value { return value{V: "hot-app", Note: "the hot app"} },
	"UpdateBuildStatus.id": func(s *sample) value {
		return value{V: s.PendingBuild, Note: "a pending build"}
	},
	"UpdateBuildStatus.new_status": func(*sample) value { return value{V: "in_progress", Note: "a legal move"} },
	"DeleteBuild.id": func(s *sample) value {
		return value{V: s.UnusedBuild, Note: "a failed build no deployment references"}
	},
	"UpdateDeploymentStatus.id": func(s *sample) value {
		return value{V: s.PendingDeployment, Note: "a pending deployment without operations"}
	},
	"UpdateDeploymentStatus.new_status": func(*sample) value { return value{V: "canceled", Note: "a legal move"} },
	"DeleteDeployment.id": func(s *sample) value {
		return value{V: s.SmallDeployment, Note: "a deployment of a small app"}
	},
	"SetDerivedDeploymentStatus.status": func(*sample) value { return value{V: "deployed", Note: "all operations completed"} },
	"SetDerivedDeploymentStatus.started_at": func(*sample) value {
		return value{V: seedEpoch.Add(-time.Hour), Note: "an hour before the epoch"}
	},
	"SetDerivedDeploymentStatus.finished_at": func(*sample) value { return value{V: seedEpoch, Note: "the epoch"} },
	"CreateDeploymentOperations.deployment_id": func(s *sample) value {
		return value{V: s.BareDeployment, Note: "a deployment without operations"}
	},
	"DeleteDeploymentOperations.deployment_id": func(s *sample) value {
		return value{V: s.Deployment, Note: "a deployment with operations"}
	},
	"GetOperationByDeploymentAndTarget.target": func(s *sample) value {
		return value{V: s.DeploymentTarget, Note: "a target of that deployment"}
	},
	"TransitionOperation.id": func(s *sample) value {
		return value{V: s.Operation, Note: "a pending operation"}
	},
	"TransitionOperation.new_state": func(*sample) value { return value{V: "running", Note: "a legal move"} },
	// A worker claims one operation at a time (ClaimNextOperation); every
	// claimed row is written, with its deployment's counts, so a batch
	// costs the claim's buffers once per row.
	"ClaimOperations.max_rows": func(*sample) value { return value{V: int64(1), Note: "a worker's claim"} },
}

// nameValues choose by parameter name when no query-specific value exists.
// They return false when the name does not apply.
var nameValues = []func(s *sample, q *Query, p string) (value, bool){
	func(s *sample, q *Query, p string) (value, bool) {
		switch p {
		case "app_id":
			return value{V: s.HotApp, Note: "hot-app, 20% of the rows"}, true
		case "build_id":
			return value{V: s.Build, Note: "hot-app's newest succeeded build"}, true
		case "deployment_id":
			return value{V: s.Deployment, Note: "hot-app's newest deployment with operations"}, true
		case "page_size":
			return value{V: int64(pageSize), Note: "a page of 50, plus one"}, true
		case "max_rows":
			return value{V: int64(50), Note: "the default page"}, true
		case "environment":
			return value{V: "production", Note: "the busiest environment"}, true
		case "target":
			return value{V: s.Target, Note: "the target with the most pending operations"}, true
		case "targets":
			return value{V: []string{"review-a", "review-b"}, Note: "two new targets"}, true
		case "worker":
			return value{V: "review", Note: "a worker name"}, true
		case "source_version":
			return value{V: "review-sha", Note: "a commit"}, true
		case "idempotency_key":
			return value{V: "review-key", Note: "a key no row has (the seed sets none)"}, true
		case "name":
			return value{V: "hot-app", Note: "the hot app"}, true
		case "last_error", "error":
			return value{V: nil, Note: "none"}, true
		case "new_state":
			return value{V: "running", Note: "a legal move"}, true
		case "lease":
			return value{V: "1 minute", Note: "the default lease"}, true
		case "token":
			return value{V: int64(1), Note: "a fencing token"}, true
		case "max_attempts":
			return value{V: int64(3), Note: "the default attempts"}, true
		case "from_state":
			return value{V: "stopped", Note: "a resume"}, true
		case "state":
			return value{V: "pending", Note: "the state workers poll"}, true
		case "status":
			if q.Table == "builds" {
				return value{V: "succeeded", Note: "the most common status"}, true
			}
			return value{V: "deployed", Note: "the most common status"}, true
		case "new_status":
			if q.Table == "builds" {
				return value{V: "in_progress", Note: "a legal move from pending"}, true
			}
			return value{V: "canceled", Note: "a legal move from pending"}, true
		case "id":
			switch q.Table {
			case "apps":
				return value{V: s.HotApp, Note: "hot-app"}, true
			case "builds":
				return value{V: s.Build, Note: "hot-app's newest succeeded build"}, true
			case "deployments":
				return value{V: s.Deployment, Note: "hot-app's newest deployment with operations"}, true
			case "deployment_operations":
				return value{V: s.Operation, Note: "a pending operation"}, true
			}
		}
		return value{}, false
	},
	// Keyset cursors: the first page, as the service starts it.
	func(_ *sample, q *Query, p string) (value, bool) {
		col, ok := strings.CutPrefix(p, "cursor_")
		if !ok {
			return value{}, false
		}
		asc := ascendingKeyset(q)
		lo, hi, ranged := rangeOf(q, col)
		if col == "id" {
			_, _, ranged = rangeOfAny(q)
			switch {
			case ranged:
				return value{V: int64(math.MinInt64), Note: "first page: start at the range bound"}, true
			case asc:
				return value{V: int64(0), Note: "first page"}, true
			default:
				return value{V: int64(math.MaxInt64), Note: "first page"}, true
			}
		}
		switch {
		case ranged && asc:
			return value{V: lo, Note: "first page: the range start"}, true
		case ranged:
			return value{V: hi, Note: "first page: the range end"}, true
		case asc:
			return value{V: firstPageAsc, Note: "first page"}, true
		default:
			return value{V: firstPageDesc, Note: "first page"}, true
		}
	},
	// Ranges and timestamps.
	func(_ *sample, _ *Query, p string) (value, bool) {
		switch {
		case strings.HasSuffix(p, "_after"):
			return value{V: rangeAfter, Note: "120 days before the epoch"}, true
		case strings.HasSuffix(p, "_before"):
			return value{V: rangeBefore, Note: "30 days before the epoch"}, true
		case p == "started_at":
			return value{V: seedEpoch.Add(-time.Hour), Note: "an hour before the epoch"}, true
		case strings.HasSuffix(p, "_at"):
			return value{V: seedEpoch, Note: "the epoch"}, true
		}
		return value{}, false
	},
}

var rowCompareRE = regexp.MustCompile(`\)\s*([<>])\s*\(`)

// ascendingKeyset reports whether the query's keyset comparison is
// "(col, id) > (…)", that is, whether it pages in ascending order.
func ascendingKeyset(q *Query) bool {
	m := rowCompareRE.FindStringSubmatch(q.SQL)
	return m != nil && m[1] == ">"
}

// rangeOf returns the range of a keyset column (cursor_updated_at pairs
// with updated_after and updated_before).
func rangeOf(q *Query, col string) (lo, hi time.Time, ok bool) {
	base := strings.TrimSuffix(col, "_at")
	has := func(n string) bool {
		for _, p := range q.Params {
			if p == n {
				return true
			}
		}
		return false
	}
	if has(base+"_after") && has(base+"_before") {
		return rangeAfter, rangeBefore, true
	}
	return time.Time{}, time.Time{}, false
}

// rangeOfAny reports whether any cursor of the query has a range.
func rangeOfAny(q *Query) (lo, hi time.Time, ok bool) {
	for _, p := range q.Params {
		if col, found := strings.CutPrefix(p, "cursor_"); found && col != "id" {
			if lo, hi, ok := rangeOf(q, col); ok {
				return lo, hi, true
			}
		}
	}
	return time.Time{}, time.Time{}, false
}

// typeValue is the last resort: a value of the parameter's type.
func typeValue(oid uint32) (value, bool) {
	const note = "default for the type: add a representative value to internal/review/params.go"
	switch oid {
	case pgtype.Int8OID, pgtype.Int4OID, pgtype.Int2OID:
		return value{V: int64(1), Note: note, Fallback: true}, true
	case pgtype.TextOID, pgtype.VarcharOID:
		return value{V: "review", Note: note, Fallback: true}, true
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		return value{V: seedEpoch, Note: note, Fallback: true}, true
	case pgtype.BoolOID:
		return value{V: false, Note: note, Fallback: true}, true
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID:
		return value{V: []string{"review"}, Note: note, Fallback: true}, true
	case pgtype.Int8ArrayOID, pgtype.Int4ArrayOID:
		return value{V: []int64{1}, Note: note, Fallback: true}, true
	}
	return value{}, false
}

// paramValue chooses the value of parameter p (PostgreSQL type oid) of q.
func paramValue(s *sample, q *Query, p string, oid uint32) (value, error) {
	if f, ok := queryValues[q.Name+"."+p]; ok {
		return f(s), nil
	}
	for _, f := range nameValues {
		if v, ok := f(s, q, p); ok {
			return v, nil
		}
	}
	if v, ok := typeValue(oid); ok {
		return v, nil
	}
	return value{}, fmt.Errorf("no representative value for parameter %s of %s (type oid %d): "+
		"add %q to queryValues in internal/review/params.go", p, q.Name, oid, q.Name+"."+p)
}
