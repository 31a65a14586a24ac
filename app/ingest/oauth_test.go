package ingest_test

import (
	"testing"

	"oneid/app/ingest"
)

func TestCheckReturnURL(t *testing.T) {
	const pub = "https://oneid.example.com"
	hosts := []string{"h5.example.com", "m.example.com:8443"}
	cases := map[string]string{
		"/welcome?x=1#top":                          "https://oneid.example.com/welcome?x=1#top",
		"https://oneid.example.com/a":               "https://oneid.example.com/a",
		"https://h5.example.com/shop?id=3":          "https://h5.example.com/shop?id=3",
		"https://H5.EXAMPLE.COM/":                   "https://H5.EXAMPLE.COM/",
		"http://m.example.com:8443/x":               "http://m.example.com:8443/x",
		"https://m.example.com/x":                   "",
		"https://evil.example.com/":                 "",
		"//evil.example.com/":                       "",
		"///evil.example.com/":                      "",
		"/\\evil.example.com":                       "",
		"\\\\evil.example.com":                      "",
		"https://h5.example.com@evil.example.com/":  "",
		"https://h5.example.com.evil.example.com/":  "",
		"javascript:alert(1)":                       "",
		"data:text/html,hi":                         "",
		"https:evil.example.com":                    "",
		"https://h5.example.com/\r\nSet-Cookie: x":  "",
		"https://h5.example.com\t.evil.example.com": "",
		"evil.example.com":                          "",
		"":                                          "",
	}
	for in, want := range cases {
		got, ok := ingest.CheckReturnURL(pub, hosts, in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}
