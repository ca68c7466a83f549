package deploydb

import (
	"fmt"
	"time"
)

// Timestamps. PostgreSQL keeps microseconds; Go times carry nanoseconds.
// deploydb settles the difference in one place:
//
//   - A filter bound (DeploymentFilter's After and Before fields) is rounded
//     up to the next microsecond, so that After stays inclusive and Before
//     exclusive for the exact instant given: a row at T is selected by
//     After T-500ns and by Before T+500ns, a row at T+1µs by neither bound
//     at T+500ns. The cursor of a list is bound to the rounded values, so
//     two filters whose bounds round alike share cursors.
//   - A timestamp a caller stores (BuildRow's fields) is truncated to the
//     microsecond, as the driver would, and must then lie strictly between
//     0001-01-01T00:00:00Z (the zero time.Time, which means "not set") and
//     9999-12-31T23:59:59Z; anything else is ErrInvalidArgument. Every list
//     starts its first page at or beyond those bounds, so every row that can
//     be written is reachable by every list that should show it.
var (
	// timeFloor is the earliest filter bound and the exclusive lower bound
	// of stored timestamps.
	timeFloor = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	// timeCeil is the latest filter bound and the exclusive upper bound of
	// stored timestamps; descending first pages start at it.
	timeCeil = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ceilMicro rounds t up to the next whole microsecond (t itself when it is
// one).
func ceilMicro(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); r.Before(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// storedTime truncates a caller's timestamp (field what of row row) to the
// microsecond and checks that it lies in the stored range. The zero time is "not set" and
// returned as it is.
func storedTime(op string, row int, what string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return t, nil
	}
	u := t.Truncate(time.Microsecond)
	if !u.After(timeFloor) || !u.Before(timeCeil) {
		return time.Time{}, invalidArg(op, "row %d: %s %s is outside the stored range (after %s, before %s)", row, what,
			t.UTC().Format(time.RFC3339Nano), timeFloor.Format(time.RFC3339), timeCeil.Format(time.RFC3339))
	}
	return u, nil
}

// boundTime rounds a filter bound up to the microsecond and checks its
// range; the zero time is "not set".
func boundTime(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return t, nil
	}
	u := ceilMicro(t)
	if u.Before(timeFloor) || u.After(timeCeil) {
		return time.Time{}, fmt.Errorf("time %s is outside the supported range (%s to %s)",
			t.UTC().Format(time.RFC3339Nano), timeFloor.Format(time.RFC3339), timeCeil.Format(time.RFC3339))
	}
	return u, nil
}
