package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/deploydb/deploydb/db"
)

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// wantsJSON reports whether the command line asks for the JSON report
// (-json, --json, --json=true), looking no further than a "--". It is read
// before the flags are parsed, so that a command line the flag parser
// refuses still gets its report in JSON.
func wantsJSON(args []string) bool {
	on := false
	for _, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		on = true
		if hasValue {
			on, _ = strconv.ParseBool(value)
		}
	}
	return on
}

// connFlags are the flags of every command that connects: the database URL,
// the JSON report and the connect timeout.
type connFlags struct {
	url            string
	json           bool
	connectTimeout time.Duration // meaningful when connectTimeoutSet
	// connectTimeoutSet reports that --connect-timeout was given: it then
	// overrides the URL's connect_timeout.
	connectTimeoutSet bool
}

// register adds the flags to fs; urlHelp describes --url.
func (c *connFlags) register(fs *flag.FlagSet, urlHelp string) {
	fs.StringVar(&c.url, "url", "", urlHelp)
	fs.BoolVar(&c.json, "json", false, "print a JSON report on stdout (progress stays on stderr)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 0, fmt.Sprintf(
		"give up on a server that has not completed the connection within this `duration` "+
			"(default: connect_timeout in the URL, else %s)", db.DefaultConnectTimeout))
}

// check validates the parsed flags of fs, which registered c: durations and
// counts must not be negative, and --connect-timeout must be positive.
func (c *connFlags) check(fs *flag.FlagSet) error {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "connect-timeout" {
			c.connectTimeoutSet = true
		}
	})
	if err := checkNotNegative(fs); err != nil {
		return err
	}
	if c.connectTimeoutSet && c.connectTimeout <= 0 {
		return usageError{fmt.Sprintf("--connect-timeout must be a positive duration, not %s", c.connectTimeout)}
	}
	return nil
}

// migrateOptions returns the options that carry the connect timeout to
// package db.
func (c *connFlags) migrateOptions() []db.MigrateOption {
	if !c.connectTimeoutSet {
		return nil
	}
	return []db.MigrateOption{db.WithConnectTimeout(c.connectTimeout)}
}

// checkNotNegative refuses a negative value in any duration or integer flag
// of fs: every one of them is a timeout or a count.
func checkNotNegative(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		switch v := g.Get().(type) {
		case time.Duration:
			if v < 0 {
				err = usageError{fmt.Sprintf("--%s must not be negative, not %s", f.Name, v)}
			}
		case int:
			if v < 0 {
				err = usageError{fmt.Sprintf("--%s must not be negative, not %d", f.Name, v)}
			}
		}
	})
	return err
}

// jsonReport is what --json prints on stdout, on success and on failure,
// usage errors included.
type jsonReport struct {
	Command  string     `json:"command"`
	ExitCode int        `json:"exit_code"`
	Result   any        `json:"result,omitempty"`
	Error    *jsonError `json:"error,omitempty"`
}

type jsonError struct {
	// Kind is failed, usage, checksum_mismatch, locked or data_loss.
	Kind      string         `json:"kind"`
	Message   string         `json:"message"`
	File      string         `json:"file,omitempty"`
	Statement string         `json:"statement,omitempty"`
	SQLState  string         `json:"sqlstate,omitempty"`
	Applied   int            `json:"applied_statements,omitempty"`
	Total     int            `json:"total_statements,omitempty"`
	Files     []string       `json:"files,omitempty"`
	Lock      *db.LockHolder `json:"lock,omitempty"`
	DataLoss  []string       `json:"data_loss,omitempty"`
}

// writeJSON prints the JSON report of command (such as "migrate up").
func writeJSON(w io.Writer, command string, code int, result any, err error) {
	rep := jsonReport{Command: command, ExitCode: code, Result: result}
	if err != nil {
		je := &jsonError{Message: prefixed(err)}
		je.Kind = map[int]string{
			exitFailed: "failed", exitUsage: "usage", exitChecksum: "checksum_mismatch",
			exitLocked: "locked", exitDataLoss: "data_loss",
		}[code]
		var (
			me *db.MigrationError
			ce *db.ChecksumError
			le *db.LockedError
			de *db.DataLossError
		)
		switch {
		case errors.As(err, &me):
			je.File, je.Statement, je.SQLState, je.Applied, je.Total = me.File, me.Statement, me.SQLState, me.Applied, me.Total
		case errors.As(err, &ce):
			je.Files = ce.Files
		case errors.As(err, &le):
			je.Lock = le.Holder
		case errors.As(err, &de):
			je.DataLoss = de.Losses
		}
		rep.Error = je
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

// parseFlags parses args with fs. With asJSON the flag package prints
// nothing (the error goes into the JSON report); otherwise it prints the
// error and the usage on stderr, as usual. A parse error is a usageError;
// --help is flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, asJSON bool) error {
	if asJSON {
		fs.SetOutput(io.Discard)
	}
	err := fs.Parse(args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return err
	case asJSON:
		return usageError{err.Error()}
	}
	return printedUsageError{usageError{err.Error()}}
}

// printedUsageError is a usage error the flag package has already printed,
// with the usage, on stderr.
type printedUsageError struct{ usageError }

// Unwrap returns the usage error.
func (e printedUsageError) Unwrap() error { return e.usageError }

// finish reports the outcome of command and returns its exit code: code
// when err is nil, else the exit code of err. With asJSON the report goes to
// stdout in JSON, otherwise an error goes to stderr, followed by usageHint
// for a usage error.
func finish(stdout, stderr io.Writer, asJSON bool, command string, code int, result any, err error, usageHint string) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		code = exitCode(err)
	}
	if asJSON {
		writeJSON(stdout, command, code, result, err)
		return code
	}
	var printed printedUsageError
	if err != nil && !errors.As(err, &printed) {
		fmt.Fprintln(stderr, prefixed(err))
		if code == exitUsage && usageHint != "" {
			fmt.Fprintln(stderr, usageHint)
		}
	}
	return code
}
