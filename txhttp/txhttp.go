// Package txhttp is optional net/http middleware that runs each request in
// one database transaction of a deploydb Service, carried in the request's
// context.
//
//	mux.Handle("POST /apps", txhttp.HandlerFunc(createApp))
//	http.ListenAndServe(addr, txhttp.Middleware(svc)(mux))
//
//	func createApp(w http.ResponseWriter, r *http.Request) error {
//		svc := txhttp.Resolve(r.Context(), nil) // the request's transaction
//		app, err := svc.CreateApp(r.Context(), deploydb.CreateAppParams{Name: r.FormValue("name")})
//		if err != nil {
//			return err // rolls back, answers 500 unless the handler wrote a response
//		}
//		...
//	}
//
// The transaction commits when the handler ends with a status below 400
// (2xx or 3xx, or no status at all) and returned no error; it rolls back
// when the handler answers 4xx or 5xx, returns an error (HandlerFunc),
// calls MarkForRollback, or panics (the panic goes on after the rollback).
//
// The response is buffered until the transaction has ended, so that a
// client never sees success for work that did not commit: when the commit
// fails, the buffered response is dropped and the error handler answers
// instead (500, or 503 when the database is unavailable). Handlers that
// stream (http.Flusher) do not belong behind this middleware.
//
// Each request holds one connection of the pool for its whole duration;
// size the pool for the concurrent requests. The transaction runs once:
// it is not retried on a serialization failure, since the handler's effects
// outside the database cannot be undone.
package txhttp

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/deploydb/deploydb"
)

// Option configures Middleware.
type Option func(*config)

type config struct {
	tx      deploydb.TxOptions
	onError func(w http.ResponseWriter, r *http.Request, err error)
}

// WithTxOptions sets the options of every request's transaction (isolation
// level, read-only, timeouts). MaxAttempts is ignored: a request runs once.
func WithTxOptions(o deploydb.TxOptions) Option { return func(c *config) { c.tx = o } }

// WithErrorHandler sets what answers a request whose transaction could not
// begin or commit. The default writes 503 Service Unavailable when the error
// matches deploydb.ErrUnavailable or deploydb.ErrTimeout, and 500 otherwise.
func WithErrorHandler(fn func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(c *config) { c.onError = fn }
}

func defaultOnError(w http.ResponseWriter, _ *http.Request, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, deploydb.ErrUnavailable) || errors.Is(err, deploydb.ErrTimeout) {
		code = http.StatusServiceUnavailable
	}
	http.Error(w, http.StatusText(code), code)
}

type ctxKey struct{}

// request is what the middleware puts in a request's context.
type request struct {
	svc      *deploydb.Service
	rollback atomic.Bool
}

// errRollback is how the middleware asks InTx to roll back.
var errRollback = errors.New("txhttp: roll back")

// Middleware returns middleware that runs every request in one transaction
// of svc (see the package documentation for when it commits). Handlers
// reach the transaction with FromContext or Resolve.
func Middleware(svc *deploydb.Service, opts ...Option) func(http.Handler) http.Handler {
	c := config{onError: defaultOnError}
	for _, o := range opts {
		o(&c)
	}
	c.tx.MaxAttempts = 1
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := &bufferedWriter{header: http.Header{}}
			err := svc.InTxWith(r.Context(), c.tx, func(tx *deploydb.Service) error {
				req := &request{svc: tx}
				next.ServeHTTP(buf, r.WithContext(context.WithValue(r.Context(), ctxKey{}, req)))
				if req.rollback.Load() || buf.status() >= 400 {
					return errRollback
				}
				return nil
			})
			if err != nil && !errors.Is(err, errRollback) {
				// The transaction did not begin, or did not commit: the
				// handler's response, if any, promised work that is not
				// there. Drop it.
				c.onError(w, r, err)
				return
			}
			buf.flushTo(w)
		})
	}
}

// FromContext returns the Service of the request's transaction, and false
// when ctx does not come from a request that Middleware serves.
func FromContext(ctx context.Context) (*deploydb.Service, bool) {
	req, ok := ctx.Value(ctxKey{}).(*request)
	if !ok {
		return nil, false
	}
	return req.svc, true
}

// Resolve returns the Service of the request's transaction, or fallback when
// ctx carries none (code that runs both inside and outside requests).
func Resolve(ctx context.Context, fallback *deploydb.Service) *deploydb.Service {
	if svc, ok := FromContext(ctx); ok {
		return svc
	}
	return fallback
}

// MarkForRollback makes the middleware roll back the request's transaction
// however the handler ends; the handler's response is still sent. It
// reports whether ctx belongs to such a request.
func MarkForRollback(ctx context.Context) bool {
	req, ok := ctx.Value(ctxKey{}).(*request)
	if ok {
		req.rollback.Store(true)
	}
	return ok
}

// HandlerFunc is a handler that can fail. A returned error rolls the
// request's transaction back, and answers 500 Internal Server Error when the
// handler has not written a response yet.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP implements http.Handler.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		MarkForRollback(r.Context())
		if b, ok := w.(*bufferedWriter); !ok || b.code == 0 {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}
	}
}

// bufferedWriter holds a response until the transaction has ended.
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// status is the response's status so far; 200 when nothing was written.
func (b *bufferedWriter) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status())
	_, _ = w.Write(b.body.Bytes())
}
