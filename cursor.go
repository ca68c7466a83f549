package deploydb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
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
	firstDesc = position{at: timeCeil, id: math.MaxInt64}
	firstAsc  = position{at: timeFloor, id: 0}
)

// cursorCodec encodes and verifies opaque page cursors. A cursor carries the
// keyset position and a hash of the list it belongs to (its scope), and is
// authenticated with an HMAC, so a tampered cursor, or one from another list,
// is rejected with ErrInvalidArgument.
type cursorCodec struct{ secret []byte }

// cursorEncoding is the cursors' base64 alphabet. Strict() returns a new
// Encoding each time, so it is made once.
var cursorEncoding = base64.RawURLEncoding.Strict()

// cursorTextLen is the length of an encoded cursor.
var cursorTextLen = cursorEncoding.EncodedLen(cursorBodyLen + cursorMACLen)

func (c cursorCodec) encode(scope uint64, p position) string {
	var b [cursorBodyLen + cursorMACLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], scope)
	binary.BigEndian.PutUint64(b[9:], uint64(p.at.UnixMicro()))
	binary.BigEndian.PutUint64(b[17:], uint64(p.id))
	c.sign(b[cursorBodyLen:], b[:cursorBodyLen])
	var text [64]byte
	return string(cursorEncoding.AppendEncode(text[:0], b[:]))
}

func (c cursorCodec) decode(op string, scope uint64, s string) (position, error) {
	// Decoded on the stack. Every cursor encode makes has cursorTextLen
	// characters; base64 would also accept one with line breaks inserted,
	// which is not a cursor this codec made.
	var text [64]byte
	var buf [48]byte
	if len(s) != cursorTextLen {
		return position{}, invalidArg(op, "malformed page cursor")
	}
	n, err := cursorEncoding.Decode(buf[:], text[:copy(text[:], s)])
	b := buf[:n]
	if err != nil || len(b) != cursorBodyLen+cursorMACLen || b[0] != cursorVersion {
		return position{}, invalidArg(op, "malformed page cursor")
	}
	var mac [cursorMACLen]byte
	c.sign(mac[:], b[:cursorBodyLen])
	if !hmac.Equal(b[cursorBodyLen:], mac[:]) {
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

// sign writes the first len(out) bytes of HMAC-SHA256(secret, body) into
// out. It is crypto/hmac's result, computed on the stack (hmac.New
// allocates its two hashes on every call): H((K^opad) || H((K^ipad) ||
// body)), with K the secret padded to the block size, or its hash when it
// is longer than a block. body must be at most cursorBodyLen bytes.
func (c cursorCodec) sign(out, body []byte) {
	var key [sha256.BlockSize]byte
	if len(c.secret) > sha256.BlockSize {
		sum := sha256.Sum256(c.secret)
		copy(key[:], sum[:])
	} else {
		copy(key[:], c.secret)
	}
	var inner [sha256.BlockSize + cursorBodyLen]byte
	for i, k := range key {
		inner[i] = k ^ 0x36
	}
	n := sha256.BlockSize + copy(inner[sha256.BlockSize:], body)
	innerSum := sha256.Sum256(inner[:n])
	var outer [sha256.BlockSize + sha256.Size]byte
	for i, k := range key {
		outer[i] = k ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], innerSum[:])
	sum := sha256.Sum256(outer[:])
	copy(out, sum[:])
}

// scopeOf hashes the identity of a list (method, app, filter) into a cursor
// scope: SHA-256 of the parts, each followed by a zero byte.
func scopeOf(parts ...string) uint64 {
	b := make([]byte, 0, 128)
	for _, p := range parts {
		b = scopeAppend(b, p)
	}
	return scopeSum(b)
}

// scopeAppend, scopeAppendInt and scopeSum build scopeOf's hash
// piecewise, so that callers need not format numbers into strings.
func scopeAppend(b []byte, part string) []byte { return append(append(b, part...), 0) }

// scopeAppendInt adds the decimal form of n as a part.
func scopeAppendInt(b []byte, n int64) []byte { return append(strconv.AppendInt(b, n, 10), 0) }

func scopeSum(b []byte) uint64 {
	h := sha256.Sum256(b)
	return binary.BigEndian.Uint64(h[:])
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
