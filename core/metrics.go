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
	// UnknownOutcome reports an index update whose reply was lost, late or
	// a 5xx, with what reading the bucket back found: "landed", "lost",
	// "pending" (not applied yet: sent again), "gone" (the evidence was
	// overwritten) or "unresolved" (B2 could not be read back).
	UnknownOutcome(resolution string)
	// LockAcquired reports a lock taken after waiting wait.
	LockAcquired(mode LockMode, wait time.Duration)
	// LeaseRenewed and LeaseLost report lease renewals and losses.
	LeaseRenewed()
	LeaseLost()
}

type noMetrics struct{}

func (noMetrics) Committed(string)                     {}
func (noMetrics) CASRetried()                          {}
func (noMetrics) UnknownOutcome(string)                {}
func (noMetrics) LockAcquired(LockMode, time.Duration) {}
func (noMetrics) LeaseRenewed()                        {}
func (noMetrics) LeaseLost()                           {}
