package deploydb

import (
	"strings"
	"unicode/utf8"
)

// MaxSourceVersionLen is the longest source version (commit or tag) a build
// may carry, in characters.
const MaxSourceVersionLen = 255

// MaxIdempotencyKeyLen is the longest idempotency key, in characters.
const MaxIdempotencyKeyLen = 255

// validLabel reports whether s is a lowercase RFC 1123 DNS label: 1-63
// characters of a-z, 0-9 and '-', not starting or ending with '-'. App
// names and environments follow this rule (also enforced by CHECK
// constraints).
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkName(op, what, s string) error {
	if !validLabel(s) {
		return invalidArg(op, "%s %q must be a lowercase DNS label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", what, truncate(s))
	}
	return nil
}

func checkSourceVersion(op, v string) error {
	return checkText(op, "source version", v, MaxSourceVersionLen)
}

func checkIdempotencyKey(op, k string) error {
	return checkText(op, "idempotency key", k, MaxIdempotencyKeyLen)
}

// checkText refuses free text that is not valid UTF-8, holds a NUL byte or
// is longer than max characters.
func checkText(op, what, s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return invalidArg(op, "%s is not valid UTF-8", what)
	case strings.IndexByte(s, 0) >= 0:
		return invalidArg(op, "%s contains a NUL byte", what)
	case utf8.RuneCountInString(s) > max:
		return invalidArg(op, "%s is %d characters; at most %d are allowed", what, utf8.RuneCountInString(s), max)
	}
	return nil
}

// truncate shortens input echoed in error messages.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

func checkID(op, what string, id int64) error {
	if id <= 0 {
		return invalidArg(op, "%s id %d must be positive", what, id)
	}
	return nil
}

// limit validates a row limit for the non-paginated list methods.
func limitRows(op string, n int) (int32, error) {
	size, err := pageSize(op, n)
	return int32(size), err
}
