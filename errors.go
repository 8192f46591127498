package gormpurge

import (
	"errors"
	"fmt"

	"github.com/gormpurge/gormpurge/backends"
)

// Sentinel errors, reported through the error handler (see WithErrorHandler)
// wrapped in the typed errors below. Match them with errors.Is.
var (
	// ErrInvalidURL: a model returned a URL with no canonical form
	// (backends.CanonicalURL): control characters, an unsupported scheme,
	// user information, no host, a value beginning with "//". The URL is not
	// sent. It is backends.ErrInvalidURL.
	ErrInvalidURL = backends.ErrInvalidURL
	// ErrForeignHost: a model returned a URL whose host is neither the base
	// URL's (WithBaseURL) nor one WithAllowedHosts names. The URL is not
	// sent.
	ErrForeignHost = errors.New("gormpurge: host not allowed")
	// ErrInvalidTag: a model returned a cache tag with whitespace, a comma or
	// a control character (backends.CanonicalTag). The tag is not sent. It is
	// backends.ErrInvalidTag.
	ErrInvalidTag = backends.ErrInvalidTag
	// ErrUntrackedTransaction: a registered model was written inside a
	// transaction the plugin cannot see commit (one begun on a raw
	// *sql.Conn inside db.Connection, or by another connection-pool
	// wrapper). The targets are reported in a *HandoffError and not sent,
	// since they could only be sent before the commit.
	ErrUntrackedTransaction = errors.New("gormpurge: transaction not tracked")
	// ErrNotRegistrable: Register was given something it cannot watch.
	ErrNotRegistrable = errors.New("gormpurge: cannot register model")
	// ErrUnsupportedTarget: Purge or PurgeTx was given a value it cannot
	// turn into URLs and tags: a nil, a type that is not a registered model,
	// or a kind of value it does not take. The error names the type.
	ErrUnsupportedTarget = errors.New("gormpurge: unsupported purge target")
	// ErrNoTransaction: PurgeTx was given a *gorm.DB that is not inside a
	// transaction begun through the plugin, or whose transaction has
	// already ended. Nothing is purged: use Purge for work done outside a
	// transaction.
	ErrNoTransaction = errors.New("gormpurge: not inside a transaction")
)

// TargetError reports a URL or tag a model returned that was rejected. The
// rest of the model's targets are still purged and the write succeeds.
type TargetError struct {
	Model string // the model's Go type, such as "main.Post"; empty for a URL or tag given to Purge
	Kind  string // "url" or "tag"
	Value string // the rejected value, as the model returned it, with any credential redacted (backends.RedactURL)
	Err   error  // wraps ErrInvalidURL, ErrForeignHost or ErrInvalidTag
}

// Error names the model, the kind and the rejected value, and says why.
func (e *TargetError) Error() string {
	if e.Model == "" {
		return fmt.Sprintf("gormpurge: %s %q rejected: %v", e.Kind, e.Value, e.Err)
	}
	return fmt.Sprintf("gormpurge: model %s: %s %q rejected: %v", e.Model, e.Kind, e.Value, e.Err)
}

// Unwrap returns the reason.
func (e *TargetError) Unwrap() error { return e.Err }

// ModelError reports a failure to work out a model's targets: a method that
// panicked, or a query for the rows an update or delete touches that failed.
// What could be worked out is still purged and the write succeeds.
type ModelError struct {
	Model string // the model's Go type or table
	Op    string // what was being done, such as "query old rows for update"
	Err   error
}

// Error names the model and what failed.
func (e *ModelError) Error() string {
	return fmt.Sprintf("gormpurge: model %s: %s: %v", e.Model, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *ModelError) Unwrap() error { return e.Err }

// HandoffError reports a Request that did not reach the Sink, or not all of
// it: the Sink returned an error or panicked, or the transaction could not be
// tracked (then Request is empty for updates and deletes, which are not read
// back in such a transaction). It carries the Request so that an error
// handler can keep it. With the dispatcher, a request refused for a full
// queue may have reached the backends that had room: the wrapped error names
// the ones that missed it.
type HandoffError struct {
	Request backends.Request
	Err     error
}

// Error counts the request's URLs and tags and gives the cause.
func (e *HandoffError) Error() string {
	return fmt.Sprintf("gormpurge: handoff of %d URLs and %d tags failed: %v", len(e.Request.URLs), len(e.Request.Tags), e.Err)
}

// Unwrap returns the cause.
func (e *HandoffError) Unwrap() error { return e.Err }
