package config

import (
	"strings"
	"testing"
	"time"
)

func TestExportSettings(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := Load(env(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Export != (Export{StreamMax: 100000, Keep: 7 * 24 * time.Hour, Jobs: 2}) {
		t.Fatalf("defaults %+v", c.Export)
	}
	c, err = Load(env(map[string]string{"ONEID_EXPORT_STREAM_MAX": "5000", "ONEID_EXPORT_KEEP": "48h", "ONEID_EXPORT_JOBS": "3"}))
	if err != nil || c.Export != (Export{StreamMax: 5000, Keep: 48 * time.Hour, Jobs: 3}) {
		t.Fatalf("%+v %v", c.Export, err)
	}
	_, err = Load(env(map[string]string{"ONEID_EXPORT_STREAM_MAX": "lots", "ONEID_EXPORT_KEEP": "5m", "ONEID_EXPORT_JOBS": "0"}))
	for _, name := range []string{"ONEID_EXPORT_STREAM_MAX", "ONEID_EXPORT_KEEP", "ONEID_EXPORT_JOBS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s not refused: %v", name, err)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := Load(env(map[string]string{}))
	if err != nil || c.RequestTimeout != DefaultRequestTimeout {
		t.Fatalf("default %v %v", c.RequestTimeout, err)
	}
	if c, err = Load(env(map[string]string{"ONEID_REQUEST_TIMEOUT": "3s"})); err != nil || c.RequestTimeout != 3*time.Second {
		t.Fatalf("3s: %v %v", c.RequestTimeout, err)
	}
	for _, bad := range []string{"soon", "10ms", "1h"} {
		if _, err := Load(env(map[string]string{"ONEID_REQUEST_TIMEOUT": bad})); err == nil || !strings.Contains(err.Error(), "ONEID_REQUEST_TIMEOUT") {
			t.Errorf("%q not refused: %v", bad, err)
		}
	}
}
