// Package storetest is the conformance suite every core.Store passes: the
// in-memory store always, the B2 adapter against the emulator (and real B2
// when credentials are configured).
package storetest
