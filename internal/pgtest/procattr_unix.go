//go:build unix && !linux

package pgtest

import "syscall"

// procAttr runs a child under cred (nil: as ourselves). Only Linux can tie
// the child's life to ours; elsewhere Close must run to stop the server.
func procAttr(cred *syscall.Credential, _ bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
