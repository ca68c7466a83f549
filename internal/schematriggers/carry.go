package schematriggers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Atlas runs the pinned Atlas CLI with args, in the repository root.
type Atlas func(ctx context.Context, args ...string) error

// Carrier carries schema_triggers.sql into a migration directory.
type Carrier struct {
	// Root is the repository root, where schema_triggers.sql is.
	Root string
	// Dir is the migration directory, slash-separated, relative to Root.
	Dir string
	// Name is the name of the migration (make migration NAME=...), used
	// when a new file has to be created.
	Name string
	// Atlas runs `atlas migrate new` and `atlas migrate hash`.
	Atlas Atlas
}

// Result says what Carry did.
type Result struct {
	// Status is how schema_triggers.sql stood before Carry.
	Status Status
	// File is the migration that Carry made carry schema_triggers.sql, ""
	// when it changed nothing.
	File string
	// Created reports whether File was created for it (`atlas migrate
	// new`: only schema_triggers.sql changed) rather than written by
	// `atlas migrate diff`.
	Created bool
}

// Status returns how schema_triggers.sql stands against the migrations.
func (c Carrier) Status() (Status, error) {
	triggers, err := os.ReadFile(filepath.Join(c.Root, FileName))
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Status{}, err
	}
	newest, err := Newest(os.DirFS(c.dir()))
	if err != nil {
		return Status{}, err
	}
	return Compare(triggers, exists, newest, c.Dir), nil
}

func (c Carrier) dir() string { return filepath.Join(c.Root, filepath.FromSlash(c.Dir)) }

// Carry runs after `atlas migrate diff`; before lists the migration files
// (SQLFiles) from before it ran. When schema_triggers.sql exists and the
// newest carried copy is not the file, Carry appends the file to the
// migration Atlas wrote, or, when Atlas wrote none, to a new one that
// `atlas migrate new` creates, and rehashes atlas.sum. Without
// schema_triggers.sql, or when the migrations carry it as it is, it changes
// nothing.
func (c Carrier) Carry(ctx context.Context, before []string) (Result, error) {
	st, err := c.Status()
	if err != nil || !st.Exists || st.Current() {
		return Result{Status: st}, err
	}
	res := Result{Status: st}
	triggers, err := os.ReadFile(filepath.Join(c.Root, FileName))
	if err != nil {
		return res, err
	}
	dirFS := os.DirFS(c.dir())
	after, err := SQLFiles(dirFS)
	if err != nil {
		return res, err
	}
	added := Added(before, after)
	switch {
	case len(added) > 1:
		return res, fmt.Errorf("%d new files in %s (%s); want at most the one atlas migrate diff writes",
			len(added), c.Dir, strings.Join(added, ", "))
	case len(added) == 0:
		if strings.TrimSpace(c.Name) == "" {
			return res, errors.New("no migration name for the new file")
		}
		if err := c.Atlas(ctx, "migrate", "new", c.Name, "--dir", "file://"+c.Dir); err != nil {
			return res, fmt.Errorf("atlas migrate new: %w", err)
		}
		now, err := SQLFiles(dirFS)
		if err != nil {
			return res, err
		}
		if added = Added(after, now); len(added) != 1 {
			return res, fmt.Errorf("atlas migrate new created %d files in %s, want 1", len(added), c.Dir)
		}
		res.Created = true
	}
	path := filepath.Join(c.dir(), added[0])
	data, err := os.ReadFile(path)
	if err != nil {
		return res, err
	}
	out, err := Append(data, triggers)
	if err != nil {
		return res, fmt.Errorf("%s/%s: %w", c.Dir, added[0], err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return res, err
	}
	res.File = added[0]
	if err := c.Atlas(ctx, "migrate", "hash", "--dir", "file://"+c.Dir); err != nil {
		return res, fmt.Errorf("atlas migrate hash: %w", err)
	}
	return res, nil
}
