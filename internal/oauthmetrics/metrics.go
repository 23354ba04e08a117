// Package oauthmetrics holds what the gateway's Prometheus series share:
// registering process-wide collectors into each configuration's registry
// (Caddy makes a new one per config load; the collectors, and so the
// counts, outlive it), and a bound on client label values.
package oauthmetrics

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds collectors to reg; one already there is not an error, so a
// configuration with several handlers registers them once.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// MaxClientLabels bounds the client label values of every series: later
// clients are counted as "other".
const MaxClientLabels = 1000

// Clients is a bounded set of client label values.
type Clients struct {
	m sync.Map
	n atomic.Int64
}

// Label returns id while fewer than MaxClientLabels ids have been seen (or
// id is one of them), else "other".
func (c *Clients) Label(id string) string {
	if _, ok := c.m.Load(id); ok {
		return id
	}
	if c.n.Load() >= MaxClientLabels {
		return "other"
	}
	if _, loaded := c.m.LoadOrStore(id, struct{}{}); !loaded {
		if c.n.Add(1) > MaxClientLabels {
			c.m.Delete(id)
			return "other"
		}
	}
	return id
}

// ClientLabels is the process-wide set both modules use, so one client is
// one label value everywhere.
var ClientLabels = new(Clients)

// Fixed is a counter with one label whose values are known in advance:
// each child is resolved once, when it is made, so counting costs a map
// read of a few entries and no label hashing. Every value starts at zero
// in the exposition, so rate() sees the first event.
type Fixed struct {
	Vec      *prometheus.CounterVec
	children map[string]prometheus.Counter
}

// NewFixed makes a Fixed counter with label and its values.
func NewFixed(opts prometheus.CounterOpts, label string, values ...string) *Fixed {
	f := &Fixed{Vec: prometheus.NewCounterVec(opts, []string{label}), children: make(map[string]prometheus.Counter, len(values))}
	for _, v := range values {
		f.children[v] = f.Vec.WithLabelValues(v)
	}
	return f
}

// Inc counts one event of value; a value not declared to NewFixed is not
// counted (label values come from the code, never from a request).
func (f *Fixed) Inc(value string) {
	if c, ok := f.children[value]; ok {
		c.Inc()
	}
}

// Child returns value's counter, or nil when value was not declared.
func (f *Fixed) Child(value string) prometheus.Counter { return f.children[value] }
