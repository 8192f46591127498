// Package backends is the small vocabulary shared by the gormpurge plugin, the
// dispatcher and every purge backend: the [Request] that says what to purge,
// the [Backend] interface a cache implements, and the error classifiers
// ([Permanent], [RetryAfter]) a backend uses to tell the dispatcher what to do
// with a failure.
//
// It imports nothing of gorm or of the gormpurge root package, so a backend can
// be built, tested and used without a database.
package backends
