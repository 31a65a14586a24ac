package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// ErrTxConflict is what a RetryTx function returns when it finds that a
// concurrent transaction changed rows it had read: RetryTx then runs it again,
// like after a deadlock.
var ErrTxConflict = errors.New("models: rows changed concurrently")

// Retry policy for RetryTx: up to retryAttempts runs, sleeping a random time in
// [0, min(retryCap, retryBase·2ⁿ)) before run n+1 ("full jitter", so 64 writers
// that collided do not collide again in step).
//
// The attempts are many because giving up loses an observation: with 64 writers
// on the same 1,000 people, a chunk was seen to lose 15 races in a row on a
// loaded 2-core machine. The context still bounds the whole wait.
const (
	retryAttempts = 60
	retryBase     = 2 * time.Millisecond
	retryCap      = time.Second
)

// RetryTx runs fn in a transaction and, when the database gives up on it
// because of contention, rolls back and runs the whole of fn again: MySQL
// deadlock (1213) and lock wait timeout (1205), SQLite busy or locked, and
// ErrTxConflict from fn itself. fn must therefore do nothing it cannot repeat
// outside the transaction. Other errors roll back and return at once.
//
// Called with a handle that is already in a transaction, RetryTx runs fn once
// on it: a deadlock has rolled back the outer transaction too, so only the
// outer RetryTx can usefully try again. opts are passed to BeginTx (Resolve
// asks for READ COMMITTED on MySQL).
func RetryTx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error, opts ...*sql.TxOptions) error {
	if InTransaction(db) {
		return fn(db.WithContext(ctx))
	}
	var err error
	for attempt := 0; attempt < retryAttempts; attempt++ {
		if attempt > 0 {
			wait := retryBase << (attempt - 1)
			if wait > retryCap || wait <= 0 {
				wait = retryCap
			}
			t := time.NewTimer(rand.N(wait) + time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("models: transaction abandoned after %d attempts: %w (last error: %v)", attempt, ctx.Err(), err)
			case <-t.C:
			}
		}
		err = db.WithContext(ctx).Transaction(fn, opts...)
		if err == nil || !IsRetryable(err) {
			return err
		}
	}
	return fmt.Errorf("models: transaction failed %d times under contention: %w", retryAttempts, err)
}

// InTransaction reports whether db is a handle inside an open transaction.
func InTransaction(db *gorm.DB) bool {
	_, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok
}

// IsRetryable reports whether err is a transient contention error after which
// the whole transaction may simply be run again.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrTxConflict) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff { // primary result code, without the extended bits
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

// isDuplicateKey reports a unique-key violation: MySQL 1062, SQLite
// SQLITE_CONSTRAINT_UNIQUE or _PRIMARYKEY, also when a wrapper kept only the
// message.
func isDuplicateKey(err error) bool {
	if err == nil {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) && (coded.Code() == 2067 || coded.Code() == 1555) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "Error 1062") || strings.Contains(msg, "UNIQUE constraint failed")
}

// readCommitted is the isolation Resolve asks of MySQL: every statement sees
// the latest committed rows (what an upsert just collided with), and InnoDB
// takes far fewer gap locks than under REPEATABLE READ, so fewer deadlocks.
// Every decision Resolve makes on a row it changes rests on a locking read, so
// its correctness does not depend on this; SQLite serialises writers anyway.
func readCommitted(db *gorm.DB) []*sql.TxOptions {
	if Dialect(db) != DialectMySQL {
		return nil
	}
	return []*sql.TxOptions{{Isolation: sql.LevelReadCommitted}}
}
