package wechattest_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"

	"oneid/app/wechat/wechattest"
)

// BenchmarkSync pages and fetches ONEID_BENCH_FOLLOWERS (default 100,000)
// followers per iteration and reports followers/s. For the 1M figure:
//
//	go run ./app wxsim bench --followers 1000000
func BenchmarkSync(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ONEID_BENCH_FOLLOWERS")); err == nil && v > 0 {
		n = v
	}
	var last wechattest.BenchResult
	for b.Loop() {
		r, err := wechattest.BenchSync(context.Background(), n, 4, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		last = r
	}
	b.ReportMetric(last.FollowersPerSec, "followers/s")
}

func TestBenchSyncSmall(t *testing.T) {
	r, err := wechattest.BenchSync(context.Background(), 25_001, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if r.Followers != 25_001 || r.WithUnionID == 0 || r.WithUnionID >= r.Followers {
		t.Fatalf("bench result %+v: want every follower fetched, most (not all) with a unionid", r)
	}
}
