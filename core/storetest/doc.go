// Package storetest is the conformance suite every core.Store passes: the
// in-memory store always, the B2 adapter against the emulator (and real B2
// when credentials are configured).
//
// It also holds what tests of several packages share: engine workloads
// (Increments, Linearizable, Campaign), the bucket of GCFixture for tests
// of garbage collection, and small helpers that fail the test on error
// (Upload, Commit, Names).
package storetest
