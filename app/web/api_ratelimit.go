package web

import (
	"sync"
	"time"
)

// RateLimit is the API's allowance per key: a token bucket refilled at
// PerSecond, holding at most Burst. It is kept in memory, per instance: with
// N instances behind a load balancer a key may make up to N times as many
// calls (API.md says so).
type RateLimit struct {
	PerSecond float64 // default 20
	Burst     int     // default 40
}

// rateLimiter holds one bucket per API key.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[int64]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(l RateLimit, now func() time.Time) *rateLimiter {
	if l.PerSecond <= 0 {
		l.PerSecond = 20
	}
	if l.Burst <= 0 {
		l.Burst = 40
	}
	return &rateLimiter{rate: l.PerSecond, burst: float64(l.Burst), now: now, buckets: map[int64]*bucket{}}
}

// allow takes a token from the key's bucket; when there is none it says how
// long until there is.
func (r *rateLimiter) allow(key int64) (bool, time.Duration) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(now)
	b := r.buckets[key]
	if b == nil {
		b = &bucket{tokens: r.burst, at: now}
		r.buckets[key] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(r.burst, b.tokens+el*r.rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / r.rate * float64(time.Second))
}

// sweep forgets buckets that have refilled completely: they are the same as
// no bucket. r.mu held.
func (r *rateLimiter) sweep(now time.Time) {
	if now.Sub(r.swept) < time.Minute {
		return
	}
	r.swept = now
	full := time.Duration(r.burst / r.rate * float64(time.Second))
	for k, b := range r.buckets {
		if now.Sub(b.at) > full {
			delete(r.buckets, k)
		}
	}
}
