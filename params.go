package deploydb

// Calls that create rows or filter lists take one of the structs below, so
// a new optional column or filter is a new field with a zero value that
// keeps today's behavior, not a changed signature.

// CreateAppParams are the arguments of CreateApp.
type CreateAppParams struct {
	// Name is the app's unique name: a lowercase DNS label (a-z, 0-9 and
	// '-', 1-63 characters, starting and ending with a letter or digit).
	Name string
}

// CreateBuildParams are the arguments of CreateBuild.
type CreateBuildParams struct {
	// AppID is the app the build belongs to (required).
	AppID AppID
	// SourceVersion is the commit or tag the build is made from, at most
	// MaxSourceVersionLen characters; "" for none.
	SourceVersion string
	// IdempotencyKey, when set, makes the call safe to repeat: the first
	// call with a key creates the row, a repeat with the same key and the
	// same arguments returns that row (created false), and a repeat with
	// other arguments is ErrConflict. Keys are unique per app, 1 to
	// MaxIdempotencyKeyLen characters; "" for none.
	IdempotencyKey string
}

// CreateBuildsParams are the arguments of CreateBuilds.
type CreateBuildsParams struct {
	// Rows are the builds to insert, in order. CreateBuilds does not change
	// them.
	Rows []BuildRow
}

// CreateDeploymentParams are the arguments of CreateDeployment.
type CreateDeploymentParams struct {
	// AppID is the app to deploy (required).
	AppID AppID
	// BuildID is the build to deploy (required): a succeeded build of
	// AppID.
	BuildID BuildID
	// Environment is where to deploy (required): a lowercase DNS label.
	Environment string
	// IdempotencyKey, when set, makes the call safe to repeat: the first
	// call with a key creates the row, a repeat with the same key and the
	// same arguments (build and environment) returns that row (created false), and a repeat with
	// other arguments is ErrConflict. Keys are unique per app, 1 to
	// MaxIdempotencyKeyLen characters; "" for none.
	IdempotencyKey string
}

// CreateDeploymentWithTargetsParams are the arguments of
// CreateDeploymentWithTargets.
type CreateDeploymentWithTargetsParams struct {
	// AppID is the app to deploy (required).
	AppID AppID
	// BuildID is the build to deploy (required): a succeeded build of
	// AppID.
	BuildID BuildID
	// Environment is where to deploy (required): a lowercase DNS label.
	Environment string
	// Targets are the clusters or regions to roll out to, one operation
	// each: 1 to MaxTargets distinct names of 1-63 characters of a-z, 0-9,
	// '-' and '.'.
	Targets []string
	// IdempotencyKey, when set, makes the call safe to repeat: the first
	// call with a key creates the row, a repeat with the same key and the
	// same arguments (build, environment and targets) returns that row (created false), and a repeat with
	// other arguments is ErrConflict. Keys are unique per app, 1 to
	// MaxIdempotencyKeyLen characters; "" for none.
	IdempotencyKey string
}

// BuildFilter selects the builds ListAppBuilds and ListAppBuildsPaged
// return, newest first.
type BuildFilter struct {
	// AppID is the app whose builds are listed (required).
	AppID AppID
}
