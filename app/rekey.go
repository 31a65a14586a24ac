package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"oneid/models"
)

// runRekey re-encrypts every secret at rest (AppSecrets, callback tokens,
// EncodingAESKeys and the shared WeChat tokens) from the current
// ONEID_SECRET_KEY to a new one, in one transaction, after checking that every
// value opens with the current key. Stop the portal first: a running instance
// keeps sealing with the old key.
func runRekey(ctx context.Context, args []string, env *environment) error {
	fs := newFlagSet("rekey", "re-encrypt every secret at rest under a new key: the current key is ONEID_SECRET_KEY "+
		"(or the embedded database's data/secret.key), the new one comes from --new-key-file or ONEID_NEW_SECRET_KEY "+
		"(32 random bytes in base64: openssl rand -base64 32). Stop the portal first; restart it with the new key.", env)
	keyFile := fs.String("new-key-file", "", "file holding the new key in base64 (default: ONEID_NEW_SECRET_KEY)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	newKey, err := readNewKey(*keyFile, env.getenv)
	if err != nil {
		return err
	}
	sys, err := boot(ctx, env)
	if err != nil {
		return err
	}
	defer sys.close()
	old := sys.cfg.SecretKey
	if string(old) == string(newKey) {
		return errors.New("rekey: the new key is the current key")
	}
	next, err := models.NewSealer(newKey)
	if err != nil {
		return err
	}
	// The embedded database keeps its key in the data folder: write the new
	// one beside it first, so a crash never leaves secrets without their key.
	embeddedKey := sys.cfg.Embedded && strings.TrimSpace(env.getenv("ONEID_SECRET_KEY")) == ""
	keyPath := filepath.Join(sys.cfg.DataDir, "secret.key")
	if embeddedKey {
		if err := os.WriteFile(keyPath+".new", []byte(base64.StdEncoding.EncodeToString(newKey)+"\n"), 0o600); err != nil {
			return fmt.Errorf("rekey: write the new key: %w", err)
		}
	}
	res, err := models.Rekey(ctx, sys.db, sys.sealer, next)
	if err != nil {
		if embeddedKey {
			_ = os.Remove(keyPath + ".new")
		}
		return fmt.Errorf("rekey: nothing was changed: %w", err)
	}
	if embeddedKey {
		if err := os.Rename(keyPath+".new", keyPath); err != nil {
			return fmt.Errorf("rekey: secrets are under the new key, which is in %s.new: move it to %s: %w", keyPath, keyPath, err)
		}
	}
	sys.log.Info("secrets re-encrypted", "app_secrets", res.AppSecrets, "wechat_tokens", res.WechatTokens)
	fmt.Fprintf(env.stdout, "re-encrypted %d app secrets and %d WeChat tokens\n", res.AppSecrets, res.WechatTokens)
	if embeddedKey {
		fmt.Fprintf(env.stdout, "the new key is in %s\n", keyPath)
	} else {
		fmt.Fprintln(env.stdout, "restart OneID with ONEID_SECRET_KEY set to the new key")
	}
	return nil
}

// readNewKey reads the new key from a file, else from ONEID_NEW_SECRET_KEY.
func readNewKey(path string, getenv func(string) string) ([]byte, error) {
	raw := getenv("ONEID_NEW_SECRET_KEY")
	source := "ONEID_NEW_SECRET_KEY"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("rekey: read --new-key-file: %w", err)
		}
		raw, source = string(b), path
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("rekey: give the new key with --new-key-file or ONEID_NEW_SECRET_KEY (openssl rand -base64 32)")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("rekey: the new key in %s must be 32 random bytes in base64 (openssl rand -base64 32)", source)
	}
	return key, nil
}
