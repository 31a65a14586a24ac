package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func runWith(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func keyOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func sealerOf(t *testing.T, key []byte) *models.Sealer {
	t.Helper()
	s, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// plantSecrets binds an app with all three secrets and stores a WeChat token,
// sealed under key, and returns a check that they open under another key.
func plantSecrets(t *testing.T, dbURL string, key []byte) func(key []byte) error {
	t.Helper()
	db, err := models.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s, _ := db.DB(); s.Close() })
	s := sealerOf(t, key)
	tenant, _, err := models.CreateTenant(db, models.NewTenant{Name: "Rekey Co", PrincipalName: "某某（上海）有限公司",
		Admin: models.User{Email: "rekey@example.com", PasswordHash: "x", Locale: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	const appid = "wx00000000000000aa"
	app := &models.App{AppID: appid, Kind: models.KindService, Name: "svc", PrincipalName: "某某（上海）有限公司", BindingMode: models.ModeSelfManaged}
	for col, v := range map[string]*[]byte{models.ColAppSecret: &app.SecretSealed, models.ColCallbackToken: &app.CallbackTokenSealed, models.ColAESKey: &app.AESKeySealed} {
		if *v, err = models.SealAppSecret(s, tenant.ID, appid, col, "plain-"+col); err != nil {
			t.Fatal(err)
		}
	}
	if err := models.BindApp(db, tenant.ID, app); err != nil {
		t.Fatal(err)
	}
	if err := models.NewWechatTokenStore(db, s).Put(context.Background(), appid, "access_token", models.WechatToken{Value: "the-token", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return func(key []byte) error {
		s := sealerOf(t, key)
		got, err := models.FindApp(db, tenant.ID, app.ID)
		if err != nil {
			return err
		}
		for _, col := range []string{models.ColAppSecret, models.ColCallbackToken, models.ColAESKey} {
			if v, err := models.OpenAppSecret(s, got, col); err != nil || v != "plain-"+col {
				return err
			}
		}
		tok, err := models.NewWechatTokenStore(db, s).Get(context.Background(), appid, "access_token")
		if err == nil && tok.Value != "the-token" {
			t.Fatalf("token %q", tok.Value)
		}
		return err
	}
}

func TestRekeyCommand(t *testing.T) {
	_, url := dbtest.MySQLWithURL(t)
	k1, k2, k3 := keyOf(1), keyOf(2), keyOf(3)
	env := map[string]string{"ONEID_DATABASE_URL": url, "ONEID_SECRET_KEY": base64.StdEncoding.EncodeToString(k1),
		"ONEID_DATA_DIR": t.TempDir(), "ONEID_LOG_LEVEL": "error"}
	opens := plantSecrets(t, url, k1)

	t.Run("NeedsTheNewKey", func(t *testing.T) {
		if _, _, err := runWith(t, env, "rekey"); err == nil || !strings.Contains(err.Error(), "ONEID_NEW_SECRET_KEY") {
			t.Fatalf("err %v", err)
		}
		bad := filepath.Join(t.TempDir(), "bad.key")
		os.WriteFile(bad, []byte("too short"), 0o600)
		if _, _, err := runWith(t, env, "rekey", "--new-key-file", bad); err == nil || !strings.Contains(err.Error(), "32 random bytes") {
			t.Fatalf("err %v", err)
		}
		same := filepath.Join(t.TempDir(), "same.key")
		os.WriteFile(same, []byte(env["ONEID_SECRET_KEY"]), 0o600)
		if _, _, err := runWith(t, env, "rekey", "--new-key-file", same); err == nil || !strings.Contains(err.Error(), "current key") {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("ReencryptsEverySecretUnderTheNewKey", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "new.key")
		os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(k2)+"\n"), 0o600)
		out, errOut, err := runWith(t, env, "rekey", "--new-key-file", file)
		if err != nil || !strings.Contains(out, "re-encrypted 3 app secrets and 1 WeChat tokens") {
			t.Fatalf("out %q stderr %q err %v", out, errOut, err)
		}
		if err := opens(k2); err != nil {
			t.Fatalf("under the new key: %v", err)
		}
		if err := opens(k1); err == nil {
			t.Fatal("the secrets still open under the old key")
		}
	})

	t.Run("ChangesNothingWhenAValueDoesNotOpen", func(t *testing.T) {
		// The current key is still k1 in env, but the secrets are under k2 now.
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		e["ONEID_NEW_SECRET_KEY"] = base64.StdEncoding.EncodeToString(k3)
		if _, _, err := runWith(t, e, "rekey"); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("err %v", err)
		}
		if err := opens(k2); err != nil {
			t.Fatalf("a failed rekey changed the secrets: %v", err)
		}
	})
}

func TestRekeyCommandEmbedded(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"ONEID_DATA_DIR": dir, "ONEID_LOG_LEVEL": "error"}
	if _, errOut, err := runWith(t, env, "migrate"); err != nil {
		t.Fatal(err, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	opens := plantSecrets(t, "sqlite://"+filepath.Join(dir, "oneid.db"), old)
	env["ONEID_NEW_SECRET_KEY"] = base64.StdEncoding.EncodeToString(keyOf(7))
	out, errOut, err := runWith(t, env, "rekey")
	if err != nil || !strings.Contains(out, "secret.key") {
		t.Fatalf("out %q stderr %q err %v", out, errOut, err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "secret.key")); strings.TrimSpace(string(raw)) != env["ONEID_NEW_SECRET_KEY"] {
		t.Fatal("the data folder does not hold the new key")
	}
	if err := opens(keyOf(7)); err != nil {
		t.Fatalf("under the new key: %v", err)
	}
}
