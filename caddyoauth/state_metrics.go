package caddyoauth

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyapigw/gateway/internal/oauthmetrics"
)

// Prometheus series of the server's own state: the slow-hash slots and
// the signing keys. Process-wide like the others.

// What a bcrypt or argon2id comparison found when it asked for a slot
// (oauth_slow_hash_slots_total).
const (
	slotFree    = "free"    // a slot was free at once
	slotWaited  = "waited"  // it waited, then got one
	slotRefused = "refused" // none came free within slowHashWait: not compared
)

var slowHashSlotMetrics = oauthmetrics.NewFixed(prometheus.CounterOpts{
	Namespace: "oauth", Name: "slow_hash_slots_total",
	Help: "Requests for a slow-hash (bcrypt, argon2id) slot, by result: free at once, waited, refused after 1s.",
}, "result", slotFree, slotWaited, slotRefused)

// Signing-key rotations this instance made (oauth_signing_key_rotations_total).
const (
	keyAccessToken = "access_token"
	keyIDToken     = "id_token"
	rotateSchedule = "schedule"
	rotateAdmin    = "admin"
)

var keyRotations = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "oauth", Name: "signing_key_rotations_total",
	Help: "Signing keys this instance rotated, by key (access_token, id_token) and trigger (schedule, admin).",
}, []string{"key", "trigger"})

func init() {
	// Every combination from zero, so rate() sees the first rotation.
	for _, k := range []string{keyAccessToken, keyIDToken} {
		for _, tr := range []string{rotateSchedule, rotateAdmin} {
			keyRotations.WithLabelValues(k, tr)
		}
	}
}

// keyAgeDesc describes oauth_signing_key_age_seconds.
var keyAgeDesc = prometheus.NewDesc("oauth_signing_key_age_seconds",
	"Seconds since the active access-token signing key was created (for a key file: since the file was last modified). Absent while no oauth app runs.",
	nil, nil)

// keyAge reports the active signing key's age of the running app when
// scraped.
type keyAge struct{ now func() time.Time }

// Describe implements prometheus.Collector.
func (keyAge) Describe(ch chan<- *prometheus.Desc) { ch <- keyAgeDesc }

// Collect implements prometheus.Collector.
func (k keyAge) Collect(ch chan<- prometheus.Metric) {
	a := activeApp.Load()
	if a == nil || a.keys == nil {
		return
	}
	created := a.keys.activeCreated.Load()
	if created == 0 {
		return
	}
	age := k.now().Sub(time.Unix(created, 0)).Seconds()
	ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, max(age, 0))
}

// keyAgeCollector is the one keyAge collector of the process.
var keyAgeCollector prometheus.Collector = keyAge{now: time.Now}

// registerStateMetrics adds the collectors to a configuration's registry.
func registerStateMetrics(reg prometheus.Registerer) error {
	return oauthmetrics.Register(reg, slowHashSlotMetrics.Vec, keyRotations, keyAgeCollector)
}

// registerAppMetrics adds the oauth app's collectors (store, security
// events, people, state) to a configuration's registry.
func registerAppMetrics(reg prometheus.Registerer) error {
	if err := registerStoreMetrics(reg); err != nil {
		return err
	}
	if err := oauthmetrics.Register(reg, securityEvents.Vec); err != nil {
		return err
	}
	if err := registerPeopleMetrics(reg); err != nil {
		return err
	}
	return registerStateMetrics(reg)
}
