// Package memstore is an in-memory core.Store with B2's semantics (revision
// compare-and-swap, bucket-info limits, immutable file versions) and hooks
// to inject faults, for fast tests of the engine.
package memstore
