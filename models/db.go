// Package models holds OneID's gorm structs, queries and domain rules. It knows
// nothing of HTTP or templates: handlers, jobs and the CLI all come through here.
package models

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database engine behind a *gorm.DB.
const (
	DialectMySQL  = "mysql"
	DialectSQLite = "sqlite"
)

// ErrNotFound is returned for a row that does not exist or that belongs to another
// tenant: callers cannot tell the two apart, and neither can the user.
var ErrNotFound = errors.New("not found")

// Open connects to the database named by a URL: "mysql://user:pass@host:port/db"
// or "sqlite:///path/to/file.db". It installs the tenant guard on the handle.
func Open(rawURL string) (*gorm.DB, error) {
	dialector, err := dialectorFor(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                                   logger.Discard,
		SkipDefaultTransaction:                   true,
		DisableForeignKeyConstraintWhenMigrating: true,
		NowFunc:                                  func() time.Time { return time.Now().UTC() },
		TranslateError:                           false,
	})
	if err != nil {
		return nil, fmt.Errorf("models: open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("models: open database: %w", err)
	}
	if db.Dialector.Name() == DialectMySQL {
		sqlDB.SetMaxOpenConns(64)
		sqlDB.SetMaxIdleConns(32)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		// One writer at a time is what SQLite can do anyway; a small pool keeps
		// readers going while busy_timeout queues the writers.
		sqlDB.SetMaxOpenConns(8)
	}
	if err := installTenantGuard(db); err != nil {
		return nil, err
	}
	return db, nil
}

// Dialect reports which engine a handle talks to.
func Dialect(db *gorm.DB) string { return db.Dialector.Name() }

func dialectorFor(rawURL string) (gorm.Dialector, error) {
	switch {
	case strings.HasPrefix(rawURL, "mysql://"):
		dsn, err := MySQLDSN(rawURL)
		if err != nil {
			return nil, err
		}
		return gormmysql.New(gormmysql.Config{DSN: dsn, DefaultStringSize: 191}), nil
	case strings.HasPrefix(rawURL, "sqlite://"):
		path := strings.TrimPrefix(rawURL, "sqlite://")
		if path == "" {
			return nil, errors.New("models: sqlite URL names no file")
		}
		if path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("models: create database folder: %w", err)
			}
		}
		dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
		return sqlite.Open(dsn), nil
	default:
		return nil, fmt.Errorf("models: database URL must start with mysql:// or sqlite:// (got %q)", redactURL(rawURL))
	}
}

// MySQLDSN turns mysql://user:pass@host:port/db?opt=v into the go-sql-driver form,
// with UTC times, utf8mb4 and client-side interpolation (one round trip a query).
func MySQLDSN(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("models: parse database URL: %w", errors.Unwrap(err))
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if dbName == "" {
		return "", errors.New("models: mysql URL names no database (mysql://user:pass@host:3306/oneid)")
	}
	host := u.Host
	if host == "" {
		host = "127.0.0.1:3306"
	}
	if u.Port() == "" {
		host += ":3306"
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = host
	cfg.DBName = dbName
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.Collation = "utf8mb4_bin"
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 60 * time.Second
	cfg.WriteTimeout = 60 * time.Second
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	for k, v := range u.Query() {
		cfg.Params[k] = v[0]
	}
	return cfg.FormatDSN(), nil
}

// redactURL hides a password in a database URL so it can go into an error or log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// RedactURL is redactURL for callers outside the package (config errors, logs).
func RedactURL(raw string) string { return redactURL(raw) }
