package status

import "testing"

func TestValidAndTerminal(t *testing.T) {
	terminalBuilds := map[Build]bool{BuildSucceeded: true, BuildFailed: true, BuildCanceled: true}
	for _, s := range Builds {
		if !s.Valid() || s.Terminal() != terminalBuilds[s] || s.String() != string(s) {
			t.Errorf("build status %q: valid %v terminal %v", s, s.Valid(), s.Terminal())
		}
	}
	terminalDeployments := map[Deployment]bool{DeploymentDeployed: true, DeploymentFailed: true, DeploymentCanceled: true}
	for _, s := range Deployments {
		if !s.Valid() || s.Terminal() != terminalDeployments[s] {
			t.Errorf("deployment status %q: valid %v terminal %v", s, s.Valid(), s.Terminal())
		}
	}
	for _, bad := range []string{"", "Pending", "success", "in-progress", "deployed "} {
		if Build(bad).Valid() || Deployment(bad).Valid() {
			t.Errorf("%q accepted", bad)
		}
	}
	if len(Builds) != 5 || len(Deployments) != 5 {
		t.Errorf("status lists: %d builds, %d deployments", len(Builds), len(Deployments))
	}
}
