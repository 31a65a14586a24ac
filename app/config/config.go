// Package config reads OneID's configuration from the environment, once, into
// one struct. Nothing else in the program calls os.Getenv.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything OneID can be told at start-up.
type Config struct {
	// DatabaseURL is mysql://user:pass@host:port/db or sqlite:///path.
	DatabaseURL string
	// Embedded is true when DatabaseURL was empty and the SQLite file under
	// DataDir is used.
	Embedded bool
	DataDir  string
	Addr     string
	// SecretKey is the 32-byte platform key that seals secrets at rest.
	SecretKey []byte
	// SecretKeyGenerated is set when the key was just created in DataDir.
	SecretKeyGenerated bool
	PublicURL          string
	LogLevel           slog.Level
	// RequestTimeout bounds what one browser or API request may spend,
	// database included (ONEID_REQUEST_TIMEOUT, default 10s): a database that
	// stops answering without closing its connections gives an error page
	// then, not a hang. Form posts get three times as long; downloads that
	// stream after the handler are not bound by it.
	RequestTimeout time.Duration

	WeChat WeChat
	Export Export
}

// Export tunes CSV exports of customers.
type Export struct {
	// StreamMax is the most rows an export streams straight to the browser
	// (ONEID_EXPORT_STREAM_MAX, default 100,000); larger ones run as
	// background jobs whose file is downloaded from the Exports page.
	StreamMax int64
	// Keep is how long a background export's file is kept
	// (ONEID_EXPORT_KEEP, a Go duration; default 168h, 7 days).
	Keep time.Duration
	// Jobs is how many background exports a workspace may run at once
	// (ONEID_EXPORT_JOBS, default 2).
	Jobs int
}

// DefaultRequestTimeout is RequestTimeout when ONEID_REQUEST_TIMEOUT is unset.
const DefaultRequestTimeout = 10 * time.Second

// Export defaults.
const (
	DefaultExportStreamMax = 100000
	DefaultExportKeep      = 7 * 24 * time.Hour
	DefaultExportJobs      = 2
)

// WithDefaults fills unset figures with the defaults.
func (e Export) WithDefaults() Export {
	if e.StreamMax <= 0 {
		e.StreamMax = DefaultExportStreamMax
	}
	if e.Keep <= 0 {
		e.Keep = DefaultExportKeep
	}
	if e.Jobs <= 0 {
		e.Jobs = DefaultExportJobs
	}
	return e
}

// WeChat holds the API base and the third-party platform's own credentials.
type WeChat struct {
	APIBase         string // ONEID_WECHAT_API_BASE
	OpenBase        string // ONEID_WECHAT_OPEN_BASE: host of the OAuth authorize page
	MPBase          string // ONEID_WECHAT_MP_BASE: host of the component login page
	ComponentAppID  string // ONEID_WECHAT_COMPONENT_APPID
	ComponentSecret string // ONEID_WECHAT_COMPONENT_SECRET
	ComponentToken  string // ONEID_WECHAT_COMPONENT_TOKEN
	ComponentAESKey string // ONEID_WECHAT_COMPONENT_AES_KEY (43 characters)
}

// Secure reports whether cookies must carry the Secure flag.
func (c Config) Secure() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// Load reads and validates the environment through getenv. Every problem is
// reported at once, each with what to do about it.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL: strings.TrimSpace(getenv("ONEID_DATABASE_URL")),
		DataDir:     strings.TrimSpace(getenv("ONEID_DATA_DIR")),
		Addr:        strings.TrimSpace(getenv("ONEID_ADDR")),
		PublicURL:   strings.TrimRight(strings.TrimSpace(getenv("ONEID_PUBLIC_URL")), "/"),
		WeChat: WeChat{
			APIBase:         strings.TrimRight(strings.TrimSpace(getenv("ONEID_WECHAT_API_BASE")), "/"),
			OpenBase:        strings.TrimRight(strings.TrimSpace(getenv("ONEID_WECHAT_OPEN_BASE")), "/"),
			MPBase:          strings.TrimRight(strings.TrimSpace(getenv("ONEID_WECHAT_MP_BASE")), "/"),
			ComponentAppID:  strings.TrimSpace(getenv("ONEID_WECHAT_COMPONENT_APPID")),
			ComponentSecret: strings.TrimSpace(getenv("ONEID_WECHAT_COMPONENT_SECRET")),
			ComponentToken:  strings.TrimSpace(getenv("ONEID_WECHAT_COMPONENT_TOKEN")),
			ComponentAESKey: strings.TrimSpace(getenv("ONEID_WECHAT_COMPONENT_AES_KEY")),
		},
	}
	var problems []string
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		problems = append(problems, fmt.Sprintf("ONEID_ADDR %q is not host:port (e.g. 127.0.0.1:8080)", c.Addr))
	}
	switch {
	case c.DatabaseURL == "":
		c.Embedded = true
		c.DatabaseURL = "sqlite://" + filepath.Join(c.DataDir, "oneid.db")
	case strings.HasPrefix(c.DatabaseURL, "mysql://"):
		if u, err := url.Parse(c.DatabaseURL); err != nil || strings.Trim(u.Path, "/") == "" {
			problems = append(problems, "ONEID_DATABASE_URL must look like mysql://user:pass@host:3306/oneid")
		}
	case strings.HasPrefix(c.DatabaseURL, "sqlite://"):
	default:
		problems = append(problems, "ONEID_DATABASE_URL must be empty (embedded SQLite), mysql://user:pass@host:3306/db or sqlite:///path/oneid.db")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("ONEID_PUBLIC_URL %q must be an absolute http(s) URL such as https://oneid.example.com", c.PublicURL))
	}
	switch strings.ToLower(strings.TrimSpace(getenv("ONEID_LOG_LEVEL"))) {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		problems = append(problems, "ONEID_LOG_LEVEL must be debug, info, warn or error")
	}
	if c.WeChat.APIBase == "" {
		c.WeChat.APIBase = "https://api.weixin.qq.com"
	}
	if c.WeChat.OpenBase == "" {
		c.WeChat.OpenBase = "https://open.weixin.qq.com"
	}
	if c.WeChat.MPBase == "" {
		c.WeChat.MPBase = "https://mp.weixin.qq.com"
	}
	c.RequestTimeout = DefaultRequestTimeout
	if v := strings.TrimSpace(getenv("ONEID_REQUEST_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			problems = append(problems, "ONEID_REQUEST_TIMEOUT must be a duration from 1s to 10m, e.g. 10s")
		}
		c.RequestTimeout = d
	}
	if v := strings.TrimSpace(getenv("ONEID_EXPORT_STREAM_MAX")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			problems = append(problems, "ONEID_EXPORT_STREAM_MAX must be a positive number of rows, e.g. 100000")
		}
		c.Export.StreamMax = n
	}
	if v := strings.TrimSpace(getenv("ONEID_EXPORT_KEEP")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			problems = append(problems, "ONEID_EXPORT_KEEP must be a duration of at least an hour, e.g. 168h")
		}
		c.Export.Keep = d
	}
	if v := strings.TrimSpace(getenv("ONEID_EXPORT_JOBS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			problems = append(problems, "ONEID_EXPORT_JOBS must be a number from 1 to 20")
		}
		c.Export.Jobs = n
	}
	c.Export = c.Export.WithDefaults()
	if k := c.WeChat.ComponentAESKey; k != "" && len(k) != 43 {
		problems = append(problems, "ONEID_WECHAT_COMPONENT_AES_KEY must be the 43-character EncodingAESKey from the open platform console")
	}
	if key := strings.TrimSpace(getenv("ONEID_SECRET_KEY")); key != "" {
		raw, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(raw) != 32 {
			problems = append(problems, "ONEID_SECRET_KEY must be 32 random bytes in base64 (openssl rand -base64 32)")
		}
		c.SecretKey = raw
	} else if !c.Embedded {
		problems = append(problems, "ONEID_SECRET_KEY is required with MySQL: 32 random bytes in base64 (openssl rand -base64 32)")
	}
	if len(problems) > 0 {
		return c, errors.New("config: " + strings.Join(problems, "; "))
	}
	return c, nil
}

// EnsureEmbeddedKey loads the secret key kept in the data folder for the embedded
// default, creating it (mode 0600) on first run. It does nothing when a key came
// from the environment.
func (c *Config) EnsureEmbeddedKey() error {
	if c.SecretKey != nil {
		return nil
	}
	path := filepath.Join(c.DataDir, "secret.key")
	if b, err := os.ReadFile(path); err == nil {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(raw) != 32 {
			return fmt.Errorf("config: %s is damaged: it must hold 32 bytes in base64", path)
		}
		c.SecretKey = raw
		return nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("config: create data folder: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("config: generate secret key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("config: write %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n"); err != nil {
		return fmt.Errorf("config: write %s: %w", path, err)
	}
	c.SecretKey = raw
	c.SecretKeyGenerated = true
	return nil
}
