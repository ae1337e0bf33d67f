// Package b2 is the core.Store of a real B2 bucket (or the emulator). It is
// the only package of b2cfs that speaks to B2, and the only one that
// imports blazer.
//
// Objects go through blazer's base package, under this package's own retry
// policy, a decorator over the single B2 calls (retry.go, on
// github.com/cenkalti/backoff): every attempt has a deadline
// (Config.CallTimeout; for transfers, the time without a byte moving),
// every call a bound over all its attempts (Config.Timeout), retries are
// bounded (Config.Attempts), and B2's errors are classified here into
// core's errors, in one function (classify.go). A Store also tracks
// whether B2 answers at all (health.go): after a refused connection, or an
// attempt and a probe without an answer, every call fails at once until a
// probe or a call gets an answer again, and Store.Outage tells the engine,
// which then reads from its last view (core.Options.StaleOnOutage). A call that
// changes state and may have been applied without a definite answer is
// repeated only where a repeat is harmless (uploads, copies, deletes);
// b2_update_bucket then fails with core.ErrUnknownOutcome for the engine to
// resolve, and a large file's finish is resolved here by reading the file
// back. Files this package uploads carry their group's mark (the file info
// b2cfs-group), so gc can tell them from files of other programs.
//
// The two bucket-info calls (b2_list_buckets and b2_update_bucket) are sent
// by this package itself: blazer drops the bucket revision after an update
// and never reads the one B2 answers, so it cannot chain compare-and-swaps
// without a b2_list_buckets before each one.
package b2
