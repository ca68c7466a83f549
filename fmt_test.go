package deploydb_test

import "fmt"

// fmtAll renders v with every formatting verb a log line might use.
func fmtAll(v any) string {
	return fmt.Sprintf("%v|%+v|%#v|%s|%q", v, v, v, v, v)
}
