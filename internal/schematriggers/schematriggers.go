// Package schematriggers keeps schema_triggers.sql and db/migrations in
// step. schema_triggers.sql, at the repository root, is the one place the
// database's functions and triggers are edited (the pinned Atlas CLI cannot
// express them in schema.hcl): idempotent SQL such as CREATE OR REPLACE
// FUNCTION and CREATE OR REPLACE TRIGGER. A migration carries the whole file
// at its end, after a marker line naming the file's sha256:
//
//	-- deploydb:triggers sha256=<lowercase hex sha256 of schema_triggers.sql>
//	<schema_triggers.sql, verbatim, to the end of the migration file>
//
// The newest migration (by file name) with a marker line holds the file as
// it is now; every change of the file is shipped by carrying it whole again
// in a new migration, which is harmless to apply because the file is
// idempotent.
//
// `make migration` runs the command (cmd/schematriggers carry), which
// appends the file to the migration Atlas writes, or has Atlas create a new
// one when only the file changed; `make check` runs cmd/schematriggers
// check, which fails when the newest carried copy is not the file. The
// package depends on the standard library only.
package schematriggers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
)

// FileName is the name of the triggers file at the repository root.
const FileName = "schema_triggers.sql"

// markerPrefix starts the marker line; markerRE is the whole line.
const markerPrefix = "-- deploydb:triggers"

var markerRE = regexp.MustCompile(`^-- deploydb:triggers sha256=([0-9a-f]{64})$`)

// Sum returns the lowercase hex sha256 of content.
func Sum(content []byte) string {
	s := sha256.Sum256(content)
	return hex.EncodeToString(s[:])
}

// Marker returns the marker line (without its newline) that precedes
// content in a migration file.
func Marker(content []byte) string {
	return markerPrefix + " sha256=" + Sum(content)
}

// Carried is the copy of schema_triggers.sql that one migration file holds.
type Carried struct {
	// File is the migration file's name.
	File string
	// Line is the 1-based line of the marker.
	Line int
	// SHA256 is the sum the marker names.
	SHA256 string
	// Content is everything after the marker line, to the end of the file.
	Content []byte
}

// Short returns the first twelve hex digits of the sum the marker names.
func (c *Carried) Short() string { return short(c.SHA256) }

func short(sum string) string { return sum[:min(12, len(sum))] }

// Parse returns the copy of schema_triggers.sql that the migration file
// called name carries, nil when it has no marker line. The first line that
// starts with "-- deploydb:triggers" is the marker; the error is for a
// marker line that is not exactly `-- deploydb:triggers sha256=<64 hex>`.
func Parse(name string, data []byte) (*Carried, error) {
	at, line := markerLine(data)
	if at < 0 {
		return nil, nil
	}
	end := len(data)
	rest := []byte(nil)
	if nl := bytes.IndexByte(data[at:], '\n'); nl >= 0 {
		end = at + nl
		rest = data[end+1:]
	}
	m := markerRE.FindSubmatch(data[at:end])
	if m == nil {
		return nil, fmt.Errorf("%s:%d: malformed marker line %q: want `%s sha256=<lowercase hex sha256 of %s>`",
			name, line, data[at:end], markerPrefix, FileName)
	}
	return &Carried{File: name, Line: line, SHA256: string(m[1]), Content: rest}, nil
}

// markerLine returns the byte offset and 1-based line number of the first
// line of data that starts with the marker prefix, -1 when there is none.
func markerLine(data []byte) (at, line int) {
	line = 1
	for at = 0; at < len(data); line++ {
		if bytes.HasPrefix(data[at:], []byte(markerPrefix)) {
			return at, line
		}
		nl := bytes.IndexByte(data[at:], '\n')
		if nl < 0 {
			break
		}
		at += nl + 1
	}
	return -1, 0
}

// Newest returns the newest migration file of fsys (the *.sql files at its
// root, by name) that carries schema_triggers.sql, nil when none does. A
// malformed marker in a file newer than that one is an error.
func Newest(fsys fs.FS) (*Carried, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		data, err := fs.ReadFile(fsys, names[i])
		if err != nil {
			return nil, err
		}
		c, err := Parse(names[i], data)
		if err != nil || c != nil {
			return c, err
		}
	}
	return nil, nil
}

// Status is how schema_triggers.sql stands against the migrations.
type Status struct {
	// Exists reports whether schema_triggers.sql exists; SHA256 is its sum
	// when it does.
	Exists bool
	SHA256 string
	// Newest is the newest migration that carries the file, nil for none.
	Newest *Carried
	// Problem says what is out of step, "" when nothing is: the newest
	// carried copy is the file (or there is neither file nor copy).
	Problem string
}

// Current reports whether the migrations carry the file as it is.
func (s Status) Current() bool { return s.Problem == "" }

// Compare returns the status of schema_triggers.sql, whose content is
// triggers (exists false when there is no such file), against newest, the
// newest migration that carries it (nil for none). dir names the migration
// directory in messages.
func Compare(triggers []byte, exists bool, newest *Carried, dir string) Status {
	s := Status{Exists: exists, Newest: newest}
	const fix = "run make migration NAME=<what changed> to carry it in a new migration"
	if !exists {
		if newest != nil {
			s.Problem = fmt.Sprintf("%s is missing, but %s/%s carries it: restore the file (to remove a function "+
				"or trigger, drop it in %s and run make migration NAME=<what changed>)", FileName, dir, newest.File, FileName)
		}
		return s
	}
	s.SHA256 = Sum(triggers)
	switch {
	case markerIn(triggers):
		s.Problem = fmt.Sprintf("%s contains a line that starts with %q, which only a migration's marker may: "+
			"remove or reword it", FileName, markerPrefix)
	case newest == nil:
		s.Problem = fmt.Sprintf("%s (sha256 %s) is carried by no migration in %s: %s", FileName, short(s.SHA256), dir, fix)
	case newest.SHA256 != s.SHA256:
		s.Problem = fmt.Sprintf("%s (sha256 %s) changed since %s/%s carried it (sha256 %s): %s",
			FileName, short(s.SHA256), dir, newest.File, newest.Short(), fix)
	case !bytes.Equal(newest.Content, triggers):
		s.Problem = fmt.Sprintf("%s/%s:%d names the sha256 of %s (%s), but the copy after it differs from the file: %s",
			dir, newest.File, newest.Line, FileName, short(s.SHA256), fix)
	}
	return s
}

// markerIn reports whether a line of data starts with the marker prefix.
func markerIn(data []byte) bool {
	at, _ := markerLine(data)
	return at >= 0
}

// Append returns migration with triggers carried at its end: a blank line
// (when migration is not empty), the marker line, and triggers verbatim.
// triggers must not itself contain a marker line: the first one of a file
// is where the carried copy starts.
func Append(migration, triggers []byte) ([]byte, error) {
	if markerIn(triggers) {
		return nil, fmt.Errorf("%s contains a line that starts with %q, which only a migration's marker may",
			FileName, markerPrefix)
	}
	if markerIn(migration) {
		return nil, fmt.Errorf("the migration already carries %s", FileName)
	}
	var b bytes.Buffer
	b.Write(migration)
	if len(bytes.TrimSpace(migration)) > 0 {
		if !bytes.HasSuffix(migration, []byte("\n")) {
			b.WriteByte('\n')
		}
		if !bytes.HasSuffix(migration, []byte("\n\n")) {
			b.WriteByte('\n')
		}
	}
	b.WriteString(Marker(triggers))
	b.WriteByte('\n')
	b.Write(triggers)
	return b.Bytes(), nil
}

// SQLFiles returns the names of the *.sql files at the root of fsys, in
// name order.
func SQLFiles(fsys fs.FS) ([]string, error) {
	names, err := fs.Glob(fsys, "*.sql")
	sort.Strings(names)
	return names, err
}

// Added returns the names of after that before does not hold, in order.
func Added(before, after []string) []string {
	had := map[string]bool{}
	for _, n := range before {
		had[n] = true
	}
	var out []string
	for _, n := range after {
		if !had[n] {
			out = append(out, n)
		}
	}
	return out
}
