package deploydb

import (
	"github.com/deploydb/deploydb/gen"
	"github.com/deploydb/deploydb/status"
)

// App is an application that is built and deployed.
type App = gen.App

// Build is a build of an app's source at one version.
type Build = gen.Build

// Deployment is a rollout of one build of an app to one environment.
type Deployment = gen.Deployment

// DeploymentWithBuild is a deployment together with the build it deploys.
type DeploymentWithBuild struct {
	Deployment Deployment `json:"deployment"`
	Build      Build      `json:"build"`
}

// BuildStatus is the status of a build; see package status.
type BuildStatus = status.Build

// DeploymentStatus is the status of a deployment; see package status.
type DeploymentStatus = status.Deployment

// Build statuses.
const (
	BuildPending    = status.BuildPending
	BuildInProgress = status.BuildInProgress
	BuildSucceeded  = status.BuildSucceeded
	BuildFailed     = status.BuildFailed
	BuildCanceled   = status.BuildCanceled
)

// Deployment statuses.
const (
	DeploymentPending    = status.DeploymentPending
	DeploymentInProgress = status.DeploymentInProgress
	DeploymentDeployed   = status.DeploymentDeployed
	DeploymentFailed     = status.DeploymentFailed
	DeploymentCanceled   = status.DeploymentCanceled
)

// DefaultEnvironment is the environment a deployment targets when none is
// given.
const DefaultEnvironment = "production"
