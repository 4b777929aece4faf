// Package pipeline turns a bundle spec into a release: it resolves Spark
// output into exact files, reads them as Arrow record batches in one
// canonical order, writes each asset through its format, seals the release,
// and drives publish and promote for every trigger.
package pipeline

import "errors"

var (
	// ErrSpec is a spec that cannot be used: bad YAML, an unknown key, a
	// missing input, an unknown format or option. Nothing is built or written.
	ErrSpec = errors.New("spec error")
	// ErrInput is Spark output that cannot be read as asked.
	ErrInput = errors.New("input error")
	// ErrUnsupported is a layout lockstep knows it cannot read correctly.
	ErrUnsupported = errors.New("unsupported input layout")
	// ErrNoSuccess is Spark output without _SUCCESS: the job may not have finished.
	ErrNoSuccess = errors.New("no _SUCCESS marker")
	// ErrGateFailed is a data-quality gate that failed; nothing is published.
	ErrGateFailed = errors.New("data-quality gate failed")
)
