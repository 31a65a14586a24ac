package jobs

import (
	"testing"
	"time"
)

// A queue that cannot be read is polled less and less often, up to 10 s.
func TestPollWaitBacksOff(t *testing.T) {
	cases := []struct {
		poll     time.Duration
		failures int
		want     time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, 2 * time.Second},
		{time.Second, 3, 8 * time.Second},
		{time.Second, 4, 10 * time.Second},
		{time.Second, 1000, 10 * time.Second},
		{20 * time.Millisecond, 2, 80 * time.Millisecond},
		{time.Minute, 1, time.Minute}, // never below the poll itself
	}
	for _, c := range cases {
		if got := PollWait(c.poll, c.failures); got != c.want {
			t.Errorf("PollWait(%v, %d) = %v, want %v", c.poll, c.failures, got, c.want)
		}
	}
}
