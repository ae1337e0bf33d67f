package main

// Prometheus metrics of a mount (--metrics-addr). Every source feeds them
// through a hook that costs nothing when metrics are off: b2.Config.Observe
// (B2 calls), core.Options.Metrics (commits, retries, locks, leases),
// cache.Stats (read when scraped) and fs.Config.ObserveOp (FUSE latency).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/b2cfs/b2cfs/cache"
	"github.com/b2cfs/b2cfs/core"
	"github.com/b2cfs/b2cfs/core/b2"
)

// metrics holds a mount's collectors. It implements core.Metrics. Safe for
// concurrent use.
type metrics struct {
	reg    *prometheus.Registry
	cancel context.CancelFunc // stops serving

	b2Calls    *prometheus.CounterVec   // call, class
	b2Errors   *prometheus.CounterVec   // call, code
	b2Duration *prometheus.HistogramVec // call
	commits    *prometheus.CounterVec   // outcome
	casRetries prometheus.Counter
	unknowns   *prometheus.CounterVec   // resolution
	locks      *prometheus.CounterVec   // mode
	lockWait   *prometheus.HistogramVec // mode
	renewals   prometheus.Counter
	losses     prometheus.Counter
	fuseOps    *prometheus.HistogramVec // op
}

var _ core.Metrics = (*metrics)(nil)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		b2Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "b2cfs_b2_calls_total",
			Help: "B2 API call attempts by call name and transaction class (A, B, C).",
		}, []string{"call", "class"}),
		b2Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "b2cfs_b2_errors_total",
			Help: "Failed B2 API call attempts by call name and error code (B2's code, or network).",
		}, []string{"call", "code"}),
		b2Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "b2cfs_b2_call_duration_seconds",
			Help:    "Duration of B2 API call attempts.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}, []string{"call"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "b2cfs_commits_total",
			Help: "Index changes (commits, removals, renames) by outcome: ok, conflict (EBUSY), full, error.",
		}, []string{"outcome"}),
		casRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "b2cfs_cas_retries_total",
			Help: "Compare-and-swaps of the index retried because the bucket changed.",
		}),
		unknowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "b2cfs_unknown_outcomes_total",
			Help: "Index updates whose reply was lost, late or a 5xx, by what reading the bucket back found: landed, lost, pending (sent again), gone (evidence overwritten), unresolved (B2 unreachable).",
		}, []string{"resolution"}),
		locks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "b2cfs_lock_acquisitions_total",
			Help: "Locks acquired, by mode.",
		}, []string{"mode"}),
		lockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "b2cfs_lock_wait_seconds",
			Help:    "Time spent waiting for a lock before acquiring it.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"mode"}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "b2cfs_lease_renewals_total",
			Help: "Lock leases renewed.",
		}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "b2cfs_lease_losses_total",
			Help: "Lock leases lost (not renewed before they expired).",
		}),
		fuseOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "b2cfs_fuse_op_duration_seconds",
			Help:    "Latency of FUSE operations by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"op"}),
	}
	m.reg.MustRegister(m.b2Calls, m.b2Errors, m.b2Duration, m.commits, m.casRetries,
		m.unknowns, m.locks, m.lockWait, m.renewals, m.losses, m.fuseOps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Outcomes that have not happened yet still show, as 0, so that
	// alerts on them work from the start.
	for _, o := range []string{"ok", "conflict", "full", "error"} {
		m.commits.WithLabelValues(o)
	}
	for _, r := range []string{"landed", "lost", "pending", "gone", "unresolved"} {
		m.unknowns.WithLabelValues(r)
	}
	return m
}

// startMetrics serves metrics on addr until stop, or returns nil (whose
// hooks are nil) when addr is "".
func startMetrics(ctx context.Context, addr string, log *slog.Logger) (*metrics, error) {
	if addr == "" {
		return nil, nil
	}
	m := newMetrics()
	ctx, m.cancel = context.WithCancel(ctx)
	if _, err := m.serve(ctx, addr, log); err != nil {
		m.cancel()
		return nil, err
	}
	return m, nil
}

// stop stops serving.
func (m *metrics) stop() {
	if m != nil {
		m.cancel()
	}
}

// b2Hook, coreHook and opHook return the hooks for b2.Config,
// core.Options and fs.Config: nil when m is nil.
func (m *metrics) b2Hook() func(call, class, code string, d time.Duration) {
	if m == nil {
		return nil
	}
	return m.observeB2
}

func (m *metrics) coreHook() core.Metrics {
	if m == nil {
		return nil // an untyped nil: core checks for it
	}
	return m
}

func (m *metrics) opHook() func(op string, d time.Duration) {
	if m == nil {
		return nil
	}
	return m.observeOp
}

// registerCache exports c's counters, read at scrape time.
func (m *metrics) registerCache(c *cache.Cache) {
	if m == nil {
		return
	}
	counter := func(name, help string, f func(cache.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(c.Stats())) })
	}
	m.reg.MustRegister(
		counter("b2cfs_cache_hits_total", "Opens of a version found in the local cache.",
			func(s cache.Stats) int64 { return s.Hits }),
		counter("b2cfs_cache_misses_total", "Opens of a version that had to be downloaded.",
			func(s cache.Stats) int64 { return s.Misses }),
		counter("b2cfs_cache_filled_bytes_total", "Bytes downloaded into the local cache.",
			func(s cache.Stats) int64 { return s.FilledBytes }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "b2cfs_cache_bytes", Help: "Bytes of versions held in the local cache.",
		}, func() float64 { return float64(c.Stats().UsedBytes) }),
	)
}

// registerStore exports whether s reaches B2, read at scrape time.
func (m *metrics) registerStore(s *b2.Store) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "b2cfs_b2_reachable",
		Help: "1 while B2 answers, 0 while it is unreachable (refused connections, or no answer to a call and a probe).",
	}, func() float64 {
		if ok, _ := s.Reachable(); ok {
			return 1
		}
		return 0
	}))
}

// observeB2 is the b2.Config.Observe hook.
func (m *metrics) observeB2(call, class, code string, d time.Duration) {
	m.b2Calls.WithLabelValues(call, class).Inc()
	if code != "" {
		m.b2Errors.WithLabelValues(call, code).Inc()
	}
	m.b2Duration.WithLabelValues(call).Observe(d.Seconds())
}

// observeOp is the fs.Config.ObserveOp hook.
func (m *metrics) observeOp(op string, d time.Duration) {
	m.fuseOps.WithLabelValues(op).Observe(d.Seconds())
}

func (m *metrics) Committed(outcome string) { m.commits.WithLabelValues(outcome).Inc() }
func (m *metrics) CASRetried()              { m.casRetries.Inc() }
func (m *metrics) UnknownOutcome(r string)  { m.unknowns.WithLabelValues(r).Inc() }
func (m *metrics) LeaseRenewed()            { m.renewals.Inc() }
func (m *metrics) LeaseLost()               { m.losses.Inc() }

func (m *metrics) LockAcquired(mode core.LockMode, wait time.Duration) {
	label := mode.String()
	m.locks.WithLabelValues(label).Inc()
	m.lockWait.WithLabelValues(label).Observe(wait.Seconds())
}

// serve listens on addr at once (so that a busy port fails the mount) and
// serves /metrics until ctx ends.
func (m *metrics) serve(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr(), nil
}
