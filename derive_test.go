package deploydb_test

import (
	"math/rand"
	"testing"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/status"
)

// expectedStatus states the derived-status rules of the rollouts design as
// independent predicates over the counts of each state.
func expectedStatus(states []deploydb.OperationState) deploydb.DeploymentStatus {
	count := map[deploydb.OperationState]int{}
	for _, s := range states {
		count[s]++
	}
	n := len(states)
	active := count[deploydb.OperationRunning] + count[deploydb.OperationWaitingForCutover] + count[deploydb.OperationCuttingOver]
	only := func(allowed ...deploydb.OperationState) bool {
		k := 0
		for _, a := range allowed {
			k += count[a]
		}
		return k == n
	}
	switch {
	case n == 0:
		return deploydb.DeploymentPending
	case active > 0:
		return deploydb.DeploymentInProgress
	case count[deploydb.OperationFailed] > 0:
		return deploydb.DeploymentFailed
	case only(deploydb.OperationCompleted):
		return deploydb.DeploymentDeployed
	case only(deploydb.OperationPending):
		return deploydb.DeploymentPending
	case only(deploydb.OperationPending, deploydb.OperationCompleted):
		return deploydb.DeploymentInProgress
	}
	// What is left has a stopped or reverted target and nothing active or
	// failed: the rollout was called off.
	return deploydb.DeploymentCanceled
}

// TestDeriveDeploymentStatusExamples pins the documented table with literal
// cases.
func TestDeriveDeploymentStatusExamples(t *testing.T) {
	p, r, w, c := deploydb.OperationPending, deploydb.OperationRunning, deploydb.OperationWaitingForCutover, deploydb.OperationCuttingOver
	done, f, s, rev := deploydb.OperationCompleted, deploydb.OperationFailed, deploydb.OperationStopped, deploydb.OperationReverted
	cases := []struct {
		states []deploydb.OperationState
		want   deploydb.DeploymentStatus
	}{
		{[]deploydb.OperationState{p}, deploydb.DeploymentPending},
		{[]deploydb.OperationState{p, p, p}, deploydb.DeploymentPending},
		{[]deploydb.OperationState{r}, deploydb.DeploymentInProgress},
		{[]deploydb.OperationState{done, w}, deploydb.DeploymentInProgress},
		{[]deploydb.OperationState{f, c}, deploydb.DeploymentInProgress},
		{[]deploydb.OperationState{p, done}, deploydb.DeploymentInProgress},
		{[]deploydb.OperationState{done, done}, deploydb.DeploymentDeployed},
		{[]deploydb.OperationState{done, f}, deploydb.DeploymentFailed},
		{[]deploydb.OperationState{p, f}, deploydb.DeploymentFailed},
		{[]deploydb.OperationState{s, f}, deploydb.DeploymentFailed},
		{[]deploydb.OperationState{s}, deploydb.DeploymentCanceled},
		{[]deploydb.OperationState{s, p, p}, deploydb.DeploymentCanceled},
		{[]deploydb.OperationState{s, done}, deploydb.DeploymentCanceled},
		{[]deploydb.OperationState{rev, rev}, deploydb.DeploymentCanceled},
		{[]deploydb.OperationState{rev, done}, deploydb.DeploymentCanceled},
		{[]deploydb.OperationState{s, r}, deploydb.DeploymentInProgress},
		{nil, deploydb.DeploymentPending},
	}
	for _, tc := range cases {
		if got := deploydb.DeriveDeploymentStatus(tc.states...); got != tc.want {
			t.Errorf("DeriveDeploymentStatus(%v) = %s, want %s", tc.states, got, tc.want)
		}
	}
}

// TestDeriveDeploymentStatusExhaustive checks every multiset of operation
// states of size 1 to 3, in every order.
func TestDeriveDeploymentStatusExhaustive(t *testing.T) {
	all := status.Operations
	checked := 0
	var visit func(prefix []deploydb.OperationState, from, size int)
	visit = func(prefix []deploydb.OperationState, from, size int) {
		if len(prefix) == size {
			want := expectedStatus(prefix)
			for _, perm := range permutations(prefix) {
				if got := deploydb.DeriveDeploymentStatus(perm...); got != want {
					t.Errorf("DeriveDeploymentStatus(%v) = %s, want %s", perm, got, want)
				}
			}
			checked++
			return
		}
		for i := from; i < len(all); i++ {
			visit(append(prefix[:len(prefix):len(prefix)], all[i]), i, size)
		}
	}
	for size := 1; size <= 3; size++ {
		visit(nil, 0, size)
	}
	// 8 + 36 + 120 multisets of 8 states.
	if checked != 164 {
		t.Fatalf("checked %d multisets, want 164", checked)
	}
	t.Logf("checked %d multisets of up to 3 operation states", checked)
}

func permutations(s []deploydb.OperationState) [][]deploydb.OperationState {
	if len(s) <= 1 {
		return [][]deploydb.OperationState{s}
	}
	var out [][]deploydb.OperationState
	for i := range s {
		rest := append(append([]deploydb.OperationState{}, s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]deploydb.OperationState{s[i]}, p...))
		}
	}
	return out
}

// TestDeriveDeploymentStatusProperties draws larger random sets and checks
// the rules plus properties that must hold whatever the set.
func TestDeriveDeploymentStatusProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	all := status.Operations
	for i := 0; i < 20000; i++ {
		n := 4 + rng.Intn(60)
		states := make([]deploydb.OperationState, n)
		// Skew toward few distinct states so that "all X" sets occur.
		pool := all[rng.Intn(len(all)):]
		if k := 1 + rng.Intn(3); k < len(pool) {
			pool = pool[:k]
		}
		for j := range states {
			states[j] = pool[rng.Intn(len(pool))]
		}
		got := deploydb.DeriveDeploymentStatus(states...)
		if want := expectedStatus(states); got != want {
			t.Fatalf("DeriveDeploymentStatus(%v) = %s, want %s", states, got, want)
		}
		shuffled := append([]deploydb.OperationState(nil), states...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if again := deploydb.DeriveDeploymentStatus(shuffled...); again != got {
			t.Fatalf("order matters: %v -> %s but %v -> %s", states, got, shuffled, again)
		}
		// Starting work on any target puts the deployment in progress.
		if s := deploydb.DeriveDeploymentStatus(append(states, deploydb.OperationRunning)...); s != deploydb.DeploymentInProgress {
			t.Fatalf("%v + running -> %s", states, s)
		}
		// A failure with nothing active fails the deployment.
		withFailure := append(append([]deploydb.OperationState(nil), states...), deploydb.OperationFailed)
		if got != deploydb.DeploymentInProgress || hasActive(states) {
			if s := deploydb.DeriveDeploymentStatus(withFailure...); s != deploydb.DeploymentFailed && hasActive(states) == false {
				t.Fatalf("%v + failed -> %s", states, s)
			}
		}
		// deployed and pending mean every target agrees.
		if got == deploydb.DeploymentDeployed && !allAre(states, deploydb.OperationCompleted) ||
			got == deploydb.DeploymentPending && !allAre(states, deploydb.OperationPending) {
			t.Fatalf("%v -> %s without unanimity", states, got)
		}
	}
}

func hasActive(states []deploydb.OperationState) bool {
	for _, s := range states {
		if s.Active() {
			return true
		}
	}
	return false
}

func allAre(states []deploydb.OperationState, want deploydb.OperationState) bool {
	for _, s := range states {
		if s != want {
			return false
		}
	}
	return true
}
