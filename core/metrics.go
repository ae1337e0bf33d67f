package core

import "time"

// Metrics receives the engine's events, for monitoring. Implementations are
// safe for concurrent use and quick: they are called on the commit path.
type Metrics interface {
	// Committed reports the outcome of one index change (a commit,
	// removal, rename or attribute change): "ok", "conflict", "full" or
	// "error".
	Committed(outcome string)
	// CASRetried reports a compare-and-swap that failed because the bucket
	// changed and was retried on a reloaded view.
	CASRetried()
	// LockAcquired reports a lock taken after waiting wait.
	LockAcquired(mode LockMode, wait time.Duration)
	// LeaseRenewed and LeaseLost report lease renewals and losses.
	LeaseRenewed()
	LeaseLost()
}

type noMetrics struct{}

func (noMetrics) Committed(string)                     {}
func (noMetrics) CASRetried()                          {}
func (noMetrics) LockAcquired(LockMode, time.Duration) {}
func (noMetrics) LeaseRenewed()                        {}
func (noMetrics) LeaseLost()                           {}
