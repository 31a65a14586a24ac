package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaultsToEmbeddedSQLite(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(envOf(map[string]string{"ONEID_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded || c.DatabaseURL != "sqlite://"+filepath.Join(dir, "oneid.db") {
		t.Fatalf("embedded default: got %q embedded=%v", c.DatabaseURL, c.Embedded)
	}
	if c.Addr != "127.0.0.1:8080" || c.WeChat.APIBase != "https://api.weixin.qq.com" {
		t.Fatalf("defaults: addr %q api %q", c.Addr, c.WeChat.APIBase)
	}
	if c.Secure() {
		t.Fatal("http public URL must not give Secure cookies")
	}
}

func TestEmbeddedKeyIsGeneratedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	c, _ := Load(envOf(map[string]string{"ONEID_DATA_DIR": dir}))
	if err := c.EnsureEmbeddedKey(); err != nil {
		t.Fatal(err)
	}
	if !c.SecretKeyGenerated || len(c.SecretKey) != 32 {
		t.Fatalf("first run: generated=%v len=%d", c.SecretKeyGenerated, len(c.SecretKey))
	}
	st, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key mode %v, want 0600", st.Mode().Perm())
	}
	again, _ := Load(envOf(map[string]string{"ONEID_DATA_DIR": dir}))
	if err := again.EnsureEmbeddedKey(); err != nil {
		t.Fatal(err)
	}
	if again.SecretKeyGenerated || string(again.SecretKey) != string(c.SecretKey) {
		t.Fatal("second run must reuse the stored key")
	}
}

func TestLoadRefusesBadSettingsWithClearMessages(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"MySQLNeedsKey", map[string]string{"ONEID_DATABASE_URL": "mysql://root@127.0.0.1:3306/oneid"}, "ONEID_SECRET_KEY is required"},
		{"ShortKey", map[string]string{"ONEID_SECRET_KEY": "c2hvcnQ="}, "32 random bytes"},
		{"UnknownScheme", map[string]string{"ONEID_DATABASE_URL": "postgres://x/y", "ONEID_SECRET_KEY": key}, "must be empty"},
		{"MySQLWithoutDatabase", map[string]string{"ONEID_DATABASE_URL": "mysql://root@127.0.0.1:3306/", "ONEID_SECRET_KEY": key}, "mysql://user:pass@host:3306/oneid"},
		{"BadAddr", map[string]string{"ONEID_ADDR": "8080"}, "ONEID_ADDR"},
		{"BadPublicURL", map[string]string{"ONEID_PUBLIC_URL": "oneid.example.com"}, "ONEID_PUBLIC_URL"},
		{"BadLogLevel", map[string]string{"ONEID_LOG_LEVEL": "loud"}, "ONEID_LOG_LEVEL"},
		{"BadAESKey", map[string]string{"ONEID_WECHAT_COMPONENT_AES_KEY": "short"}, "43-character"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestHTTPSPublicURLMakesCookiesSecure(t *testing.T) {
	c, err := Load(envOf(map[string]string{"ONEID_PUBLIC_URL": "https://oneid.example.com/"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Secure() || c.PublicURL != "https://oneid.example.com" {
		t.Fatalf("secure=%v public=%q", c.Secure(), c.PublicURL)
	}
}
