package pgtest

import "syscall"

// procAttr runs a child under cred (nil: as ourselves). With dieWithParent
// the kernel sends the child SIGQUIT (PostgreSQL's immediate shutdown) when
// this process dies, so a killed test binary leaves no server behind.
func procAttr(cred *syscall.Credential, dieWithParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Credential: cred}
	if dieWithParent {
		a.Pdeathsig = syscall.SIGQUIT
	}
	return a
}
