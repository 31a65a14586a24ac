package wechattest

import (
	"fmt"
	"net"
	"net/http"
	"testing"
)

// LoopbackOnly returns an HTTP client whose transport fails the test on any
// request to a host that is not loopback (127.0.0.0/8, ::1, localhost). Give
// it to every wechat client in tests so nothing ever reaches WeChat.
func LoopbackOnly(t testing.TB) *http.Client {
	return &http.Client{Transport: loopbackTransport{base: http.DefaultTransport, t: t}}
}

// LoopbackTransport is the guard as a RoundTripper, wrapping base (nil: the default).
func LoopbackTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return loopbackTransport{base: base, t: t}
}

type loopbackTransport struct {
	base http.RoundTripper
	t    testing.TB // nil: refuse without failing a test
}

func (l loopbackTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !IsLoopback(r.URL.Hostname()) {
		err := fmt.Errorf("wechattest: refusing request to non-loopback host %q", r.URL.Hostname())
		if l.t != nil {
			l.t.Errorf("%v", err)
		}
		return nil, err
	}
	return l.base.RoundTrip(r)
}

// IsLoopback reports whether host (a name or an address) is loopback.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
