package deploydb

import (
	"context"
	"fmt"
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

// FilterRule names a rule DeploymentFilter values must follow; a
// *FilterError carries the one a filter broke.
type FilterRule string

// The rules of DeploymentFilter (see its documentation).
const (
	RuleOrderBy           FilterRule = "order-by"             // OrderBy is a known order
	RuleSort              FilterRule = "sort"                 // Sort is asc or desc
	RuleStatus            FilterRule = "status"               // Status is a known status
	RuleEnvironment       FilterRule = "environment"          // Environment is a lowercase DNS label
	RuleOrderByCreatedAt  FilterRule = "order-by-created-at"  // at most one of Status and Environment
	RuleOrderByUpdatedAt  FilterRule = "order-by-updated-at"  // no Status or Environment
	RuleOrderByFinishedAt FilterRule = "order-by-finished-at" // a terminal Status, no Environment
	RuleFinishedRange     FilterRule = "finished-range"       // FinishedAfter/Before need OrderByFinishedAt
	RuleUpdatedRange      FilterRule = "updated-range"        // UpdatedAfter/Before need OrderByUpdatedAt
	RuleRangeBounds       FilterRule = "range-bounds"         // bounds in range, After before Before
)

// FilterError reports a DeploymentFilter that breaks one of its rules. It
// matches ErrInvalidArgument with errors.Is.
type FilterError struct {
	// Op is what was being done, e.g. "list deployments".
	Op string
	// Rule is the rule the filter broke.
	Rule FilterRule
	// Msg says how.
	Msg string
}

// Error implements error.
func (e *FilterError) Error() string {
	return "deploydb: " + e.Op + ": " + ErrInvalidArgument.Error() + ": rule " + string(e.Rule) + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *FilterError) Is(target error) bool { return target == ErrInvalidArgument }

// DeploymentFilter selects and orders the deployments of one app for
// ListDeployments, in the manner of the GitLab deployments API. Zero values
// mean "not set". Time ranges include their After bound and exclude their
// Before bound. Ties are broken by id in the same direction.
//
// Only combinations that an index serves are accepted; any other is refused
// with a *FilterError (ErrInvalidArgument) naming the rule (a FilterRule),
// instead of running as a slow scan:
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
	// before exclusive, each rounded up to the microsecond); they need
	// OrderBy OrderByFinishedAt.
	FinishedAfter, FinishedBefore time.Time
	// UpdatedAfter and UpdatedBefore bound updated_at (after inclusive,
	// before exclusive, each rounded up to the microsecond); they need
	// OrderBy OrderByUpdatedAt.
	UpdatedAfter, UpdatedBefore time.Time
	// OrderBy is the column the list is sorted by; "" means
	// OrderByCreatedAt.
	OrderBy DeploymentOrder
	// Sort is the direction; "" means SortDesc.
	Sort SortDirection
}

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
	rule := func(r FilterRule, format string, args ...any) (deploymentList, error) {
		return deploymentList{}, &FilterError{Op: op, Rule: r, Msg: fmt.Sprintf(format, args...)}
	}
	switch f.OrderBy {
	case OrderByCreatedAt, OrderByUpdatedAt, OrderByFinishedAt:
	default:
		return rule(RuleOrderBy, "order_by %q must be created_at, updated_at or finished_at", truncate(string(f.OrderBy)))
	}
	if f.Sort != SortAsc && f.Sort != SortDesc {
		return rule(RuleSort, "sort %q must be asc or desc", truncate(string(f.Sort)))
	}
	if f.Status != "" && !f.Status.Valid() {
		return rule(RuleStatus, "unknown deployment status %q", truncate(string(f.Status)))
	}
	if f.Environment != "" && !validLabel(f.Environment) {
		return rule(RuleEnvironment, "environment %q must be a lowercase DNS label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", truncate(f.Environment))
	}
	for _, t := range []*time.Time{&f.FinishedAfter, &f.FinishedBefore, &f.UpdatedAfter, &f.UpdatedBefore} {
		var err error
		if *t, err = boundTime(*t); err != nil {
			return rule(RuleRangeBounds, "%v", err)
		}
	}
	finishedRange := !f.FinishedAfter.IsZero() || !f.FinishedBefore.IsZero()
	updatedRange := !f.UpdatedAfter.IsZero() || !f.UpdatedBefore.IsZero()
	if finishedRange && f.OrderBy != OrderByFinishedAt {
		return rule(RuleFinishedRange, "finished_after/finished_before need order_by=finished_at (and a terminal status)")
	}
	if updatedRange && f.OrderBy != OrderByUpdatedAt {
		return rule(RuleUpdatedRange, "updated_after/updated_before need order_by=updated_at")
	}
	l := deploymentList{asc: f.Sort == SortAsc, start: timeFloor, end: timeCeil}
	switch f.OrderBy {
	case OrderByCreatedAt:
		if f.Status != "" && f.Environment != "" {
			return rule(RuleOrderByCreatedAt, "filter by status or by environment, not both")
		}
	case OrderByUpdatedAt:
		if f.Status != "" || f.Environment != "" {
			return rule(RuleOrderByUpdatedAt, "order_by=updated_at cannot be combined with a status or environment filter")
		}
		l.start, l.end = orDefault(f.UpdatedAfter, timeFloor), orDefault(f.UpdatedBefore, timeCeil)
	case OrderByFinishedAt:
		if !f.Status.Terminal() {
			return rule(RuleOrderByFinishedAt, "order_by=finished_at needs status deployed, failed or canceled")
		}
		if f.Environment != "" {
			return rule(RuleOrderByFinishedAt, "order_by=finished_at cannot be combined with an environment filter")
		}
		l.start, l.end = orDefault(f.FinishedAfter, timeFloor), orDefault(f.FinishedBefore, timeCeil)
	}
	if !l.start.Before(l.end) {
		return rule(RuleRangeBounds, "the range's after bound (%s) must be earlier than its before bound (%s)",
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
		return Page[Deployment]{}, mapError(ctx, opRead, op, err)
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
