package deploydb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"time"
)

// Page sizes.
const (
	// DefaultPageSize is the page size used when a PageRequest leaves Size 0.
	DefaultPageSize = 20
	// MaxPageSize is the largest page size a PageRequest may ask for.
	MaxPageSize = 100
)

// PageRequest asks for one page of a keyset-paginated list.
type PageRequest struct {
	// Size is the number of rows per page: 0 means DefaultPageSize; 1 to
	// MaxPageSize are allowed.
	Size int
	// Cursor is the NextCursor of the previous page, or "" for the first page.
	// It is only valid for the same list (same method, app and filter).
	Cursor string
}

// Page is one page of a keyset-paginated list.
type Page[T any] struct {
	// Items holds at most the requested number of rows.
	Items []T
	// NextCursor continues the walk; it is "" on the last page.
	NextCursor string
}

// defaultCursorSecret signs cursors unless WithCursorSecret sets another.
var defaultCursorSecret = []byte("deploydb cursor v1")

const (
	cursorVersion = 1
	cursorMACLen  = 12
	cursorBodyLen = 1 + 8 + 8 + 8 // version, scope, sort key (µs), id
)

// position is a keyset position: the sort column's value and the row id.
type position struct {
	at time.Time
	id int64
}

// Sentinel positions for a first page: every row sorts after them.
var (
	firstDesc = position{at: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), id: math.MaxInt64}
	firstAsc  = position{at: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), id: 0}
)

// cursorCodec encodes and verifies opaque page cursors. A cursor carries the
// keyset position and a hash of the list it belongs to (its scope), and is
// authenticated with an HMAC, so a tampered cursor, or one from another list,
// is rejected with ErrInvalidArgument.
type cursorCodec struct{ secret []byte }

func (c cursorCodec) encode(scope uint64, p position) string {
	var b [cursorBodyLen + cursorMACLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], scope)
	binary.BigEndian.PutUint64(b[9:], uint64(p.at.UnixMicro()))
	binary.BigEndian.PutUint64(b[17:], uint64(p.id))
	copy(b[cursorBodyLen:], c.mac(b[:cursorBodyLen]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (c cursorCodec) decode(op string, scope uint64, s string) (position, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorBodyLen+cursorMACLen || b[0] != cursorVersion {
		return position{}, invalidArg(op, "malformed page cursor")
	}
	if !hmac.Equal(b[cursorBodyLen:], c.mac(b[:cursorBodyLen])) {
		return position{}, invalidArg(op, "page cursor failed its integrity check (tampered, or signed with another secret)")
	}
	if binary.BigEndian.Uint64(b[1:]) != scope {
		return position{}, invalidArg(op, "page cursor belongs to another list (other app, filter or order)")
	}
	return position{
		at: time.UnixMicro(int64(binary.BigEndian.Uint64(b[9:]))).UTC(),
		id: int64(binary.BigEndian.Uint64(b[17:])),
	}, nil
}

func (c cursorCodec) mac(body []byte) []byte {
	m := hmac.New(sha256.New, c.secret)
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}

// scopeOf hashes the identity of a list (method, app, filter) into a cursor
// scope.
func scopeOf(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// pageSize validates a requested page size.
func pageSize(op string, n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, invalidArg(op, "page size %d out of range (1-%d, or 0 for %d)", n, MaxPageSize, DefaultPageSize)
	}
	return n, nil
}

// startPosition returns where a page starts: after the cursor, or at the
// sentinel for the first page.
func (c cursorCodec) startPosition(op string, scope uint64, cursor string, asc bool) (position, error) {
	if cursor == "" {
		if asc {
			return firstAsc, nil
		}
		return firstDesc, nil
	}
	return c.decode(op, scope, cursor)
}

// finishPage trims rows fetched with LIMIT size+1 to size and computes the
// next cursor from the last row kept.
func finishPage[T any](c cursorCodec, scope uint64, rows []T, size int, pos func(T) position) Page[T] {
	if len(rows) <= size {
		return Page[T]{Items: rows}
	}
	rows = rows[:size]
	return Page[T]{Items: rows, NextCursor: c.encode(scope, pos(rows[size-1]))}
}
