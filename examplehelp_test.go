package deploydb_test

import (
	"fmt"
	"testing"

	"github.com/deploydb/deploydb/internal/pgtest"
)

// exampleTB lets the runnable examples take their database from pgtest,
// which wants a testing.TB: a failure panics (the example fails), and
// cleanups run when the example calls done.
type exampleTB struct {
	testing.TB // satisfies the interface; the methods pgtest calls are below
	cleanups   []func()
}

func (e *exampleTB) Helper()                           {}
func (e *exampleTB) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (e *exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Error(args ...any)                 { panic(fmt.Sprint(args...)) }
func (e *exampleTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Log(...any)                        {}
func (e *exampleTB) Logf(string, ...any)               {}

func (e *exampleTB) done() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// exampleDatabase returns the URL of a fresh, migrated database for one
// example, and the function that drops it.
func exampleDatabase() (url string, done func()) {
	tb := new(exampleTB)
	return pgtest.URL(tb), tb.done
}

// exampleEmptyDatabase is exampleDatabase without the migrations.
func exampleEmptyDatabase() (url string, done func()) {
	tb := new(exampleTB)
	return pgtest.EmptyURL(tb), tb.done
}
