package deploydb

import (
	"context"
	"math"
	"net/url"
	"sort"
	"time"
)

// DeploymentOrder is the column ListDeployments sorts by.
type DeploymentOrder string

// Orders accepted by ListDeployments.
const (
	OrderByCreatedAt  DeploymentOrder = "created_at" // the default
	OrderByUpdatedAt  DeploymentOrder = "updated_at"
	OrderByFinishedAt DeploymentOrder = "finished_at"
)

// SortDirection is ascending or descending order.
type SortDirection string

// Sort directions accepted by ListDeployments.
const (
	SortDesc SortDirection = "desc" // the default: newest first
	SortAsc  SortDirection = "asc"
)

// DeploymentFilter selects and orders the deployments of one app for
// ListDeployments, in the manner of the GitLab deployments API. Zero values
// mean "not set". Time ranges include their After bound and exclude their
// Before bound. Ties are broken by id in the same direction.
//
// Only combinations that an index serves are accepted; any other is refused
// with ErrInvalidArgument naming the rule, instead of running as a slow scan:
//
//   - order-by-created-at (default): at most one of Status and Environment.
//   - order-by-updated-at: UpdatedAfter/UpdatedBefore only; no Status or
//     Environment.
//   - order-by-finished-at: Status must be terminal (deployed, failed or
//     canceled); FinishedAfter/FinishedBefore allowed; no Environment.
//   - finished-range: FinishedAfter/FinishedBefore need OrderBy finished_at.
//   - updated-range: UpdatedAfter/UpdatedBefore need OrderBy updated_at.
//   - range-bounds: After must be earlier than Before when both are set.
//
// Walking every page in created_at order returns each deployment that existed
// when the walk began exactly once. In updated_at order a deployment updated
// during the walk moves: ascending walks see it again at its new place,
// descending walks may not see it.
type DeploymentFilter struct {
	// AppID is the app whose deployments are listed (required by
	// ListDeployments and ListAppDeployments; ParseDeploymentFilter leaves
	// it zero for the caller to set).
	AppID AppID
	// Status, when set, selects deployments in that status.
	Status DeploymentStatus
	// Environment, when set, selects deployments to that environment;
	// AnyEnvironment ("") selects every environment.
	Environment string
	// FinishedAfter and FinishedBefore bound finished_at (after inclusive,
	// before exclusive); they need OrderBy OrderByFinishedAt.
	FinishedAfter, FinishedBefore time.Time
	// UpdatedAfter and UpdatedBefore bound updated_at (after inclusive,
	// before exclusive); they need OrderBy OrderByUpdatedAt.
	UpdatedAfter, UpdatedBefore time.Time
	// OrderBy is the column the list is sorted by; "" means
	// OrderByCreatedAt.
	OrderBy DeploymentOrder
	// Sort is the direction; "" means SortDesc.
	Sort SortDirection
}

// Sentinels for open time ranges.
var (
	rangeStart = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	rangeEnd   = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// deploymentList is a validated ListDeployments request.
type deploymentList struct {
	f          DeploymentFilter
	asc        bool
	start, end time.Time // the range on the order column, when it has one
	scope      uint64
}

func (f DeploymentFilter) validate(op string) (deploymentList, error) {
	if f.OrderBy == "" {
		f.OrderBy = OrderByCreatedAt
	}
	if f.Sort == "" {
		f.Sort = SortDesc
	}
	rule := func(name, format string, args ...any) (deploymentList, error) {
		return deploymentList{}, invalidArg(op, "rule "+name+": "+format, args...)
	}
	switch f.OrderBy {
	case OrderByCreatedAt, OrderByUpdatedAt, OrderByFinishedAt:
	default:
		return rule("order-by", "order_by %q must be created_at, updated_at or finished_at", truncate(string(f.OrderBy)))
	}
	if f.Sort != SortAsc && f.Sort != SortDesc {
		return rule("sort", "sort %q must be asc or desc", truncate(string(f.Sort)))
	}
	if f.Status != "" && !f.Status.Valid() {
		return rule("status", "unknown deployment status %q", truncate(string(f.Status)))
	}
	if f.Environment != "" {
		if err := checkName(op, "environment", f.Environment); err != nil {
			return deploymentList{}, err
		}
	}
	for _, t := range []time.Time{f.FinishedAfter, f.FinishedBefore, f.UpdatedAfter, f.UpdatedBefore} {
		if !t.IsZero() && (t.Before(rangeStart) || t.After(rangeEnd)) {
			return rule("range-bounds", "time %s is outside the supported range (years 0001-9999)", t.Format(time.RFC3339))
		}
	}
	finishedRange := !f.FinishedAfter.IsZero() || !f.FinishedBefore.IsZero()
	updatedRange := !f.UpdatedAfter.IsZero() || !f.UpdatedBefore.IsZero()
	if finishedRange && f.OrderBy != OrderByFinishedAt {
		return rule("finished-range", "finished_after/finished_before need order_by=finished_at (and a terminal status)")
	}
	if updatedRange && f.OrderBy != OrderByUpdatedAt {
		return rule("updated-range", "updated_after/updated_before need order_by=updated_at")
	}
	l := deploymentList{asc: f.Sort == SortAsc, start: rangeStart, end: rangeEnd}
	switch f.OrderBy {
	case OrderByCreatedAt:
		if f.Status != "" && f.Environment != "" {
			return rule("order-by-created-at", "filter by status or by environment, not both")
		}
	case OrderByUpdatedAt:
		if f.Status != "" || f.Environment != "" {
			return rule("order-by-updated-at", "order_by=updated_at cannot be combined with a status or environment filter")
		}
		l.start, l.end = orDefault(f.UpdatedAfter, rangeStart), orDefault(f.UpdatedBefore, rangeEnd)
	case OrderByFinishedAt:
		if !f.Status.Terminal() {
			return rule("order-by-finished-at", "order_by=finished_at needs status deployed, failed or canceled")
		}
		if f.Environment != "" {
			return rule("order-by-finished-at", "order_by=finished_at cannot be combined with an environment filter")
		}
		l.start, l.end = orDefault(f.FinishedAfter, rangeStart), orDefault(f.FinishedBefore, rangeEnd)
	}
	if !l.start.Before(l.end) {
		return rule("range-bounds", "the range's after bound (%s) must be earlier than its before bound (%s)",
			l.start.Format(time.RFC3339Nano), l.end.Format(time.RFC3339Nano))
	}
	l.f = f
	// scopeOf("deployments", appID, status, environment, order_by, sort,
	// start µs, end µs), without formatting the numbers into strings.
	sc := make([]byte, 0, 256)
	sc = scopeAppendInt(scopeAppend(sc, "deployments"), int64(f.AppID))
	sc = scopeAppend(scopeAppend(sc, string(f.Status)), f.Environment)
	sc = scopeAppend(scopeAppend(sc, string(f.OrderBy)), string(f.Sort))
	sc = scopeAppendInt(scopeAppendInt(sc, l.start.UnixMicro()), l.end.UnixMicro())
	l.scope = scopeSum(sc)
	return l, nil
}

func orDefault(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// ListDeployments returns one page of an app's deployments selected and
// ordered by filter (see DeploymentFilter for the combinations accepted).
// Each accepted combination runs as one index range scan.
func (s *Service) ListDeployments(ctx context.Context, filter DeploymentFilter, page PageRequest) (Page[Deployment], error) {
	const op = "list deployments"
	if err := checkID(op, "app", int64(filter.AppID)); err != nil {
		return Page[Deployment]{}, err
	}
	size, err := pageSize(op, page.Size)
	if err != nil {
		return Page[Deployment]{}, err
	}
	l, err := filter.validate(op)
	if err != nil {
		return Page[Deployment]{}, err
	}
	pos, err := s.cursors.startPosition(op, l.scope, page.Cursor, l.asc)
	if err != nil {
		return Page[Deployment]{}, err
	}
	if page.Cursor == "" {
		// Start the first page at the range bound rather than at the
		// sentinel, so the index scan begins inside the range: (col, id) <
		// (end, MinInt64) is col < end, and (col, id) > (start, MinInt64) is
		// col >= start.
		pos = position{at: l.end, id: math.MinInt64}
		if l.asc {
			pos.at = l.start
		}
	}
	sql, args := deploymentListQuery(filter.AppID, l, pos, int32(size+1))
	rows, err := listRows(ctx, s.conn, size+1, scanDeployment, deploymentFromRow, sql, args...)
	if err != nil {
		return Page[Deployment]{}, mapError(opRead, op, err)
	}
	key := func(d Deployment) position { return position{d.CreatedAt, int64(d.ID)} }
	switch l.f.OrderBy {
	case OrderByUpdatedAt:
		key = func(d Deployment) position { return position{d.UpdatedAt, int64(d.ID)} }
	case OrderByFinishedAt:
		// Terminal statuses always have finished_at (CHECK constraint).
		key = func(d Deployment) position { return position{d.FinishedAt, int64(d.ID)} }
	}
	return finishPage(s.cursors, l.scope, rows, size, key), nil
}

// Names of the query parameters ParseDeploymentFilter reads.
var deploymentFilterParams = map[string]bool{
	"status": true, "environment": true, "order_by": true, "sort": true,
	"finished_after": true, "finished_before": true, "updated_after": true, "updated_before": true,
}

// ParseDeploymentFilter reads a DeploymentFilter from URL query parameters in
// the GitLab style: status, environment, order_by, sort, and finished_after,
// finished_before, updated_after, updated_before as RFC 3339 timestamps.
// Unknown or repeated parameters, malformed values and combinations that
// ListDeployments would refuse all return ErrInvalidArgument naming the
// problem. Other parameters of the request (a page size, a cursor) must be
// removed from values first.
func ParseDeploymentFilter(values url.Values) (DeploymentFilter, error) {
	const op = "parse deployment filter"
	var f DeploymentFilter
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := values[k]
		if !deploymentFilterParams[k] {
			return DeploymentFilter{}, invalidArg(op, "unknown parameter %q", truncate(k))
		}
		if len(vs) != 1 {
			return DeploymentFilter{}, invalidArg(op, "parameter %s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "status":
			f.Status = DeploymentStatus(v)
		case "environment":
			f.Environment = v
		case "order_by":
			f.OrderBy = DeploymentOrder(v)
		case "sort":
			f.Sort = SortDirection(v)
		default:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return DeploymentFilter{}, invalidArg(op, "%s %q is not an RFC 3339 timestamp", k, truncate(v))
			}
			switch k {
			case "finished_after":
				f.FinishedAfter = t
			case "finished_before":
				f.FinishedBefore = t
			case "updated_after":
				f.UpdatedAfter = t
			case "updated_before":
				f.UpdatedBefore = t
			}
		}
	}
	if _, err := f.validate(op); err != nil {
		return DeploymentFilter{}, err
	}
	return f, nil
}
