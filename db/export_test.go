package db

// WithoutRefusalCheck makes Up run pending files that CheckFile refuses,
// so that tests can prove the session check after each statement on its
// own.
func WithoutRefusalCheck() MigrateOption {
	return func(c *migrateConfig) { c.skipRefusalCheck = true }
}
