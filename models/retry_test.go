package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestRetryTx(t *testing.T) {
	db := dbtest.SQLite(t)
	ctx := context.Background()

	t.Run("RunsTheWholeFunctionAgainAfterAConflict", func(t *testing.T) {
		calls := 0
		err := models.RetryTx(ctx, db, func(tx *gorm.DB) error {
			calls++
			if calls < 3 {
				return fmt.Errorf("wrapped: %w", models.ErrTxConflict)
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want success on the third", err, calls)
		}
	})

	t.Run("ReturnsOtherErrorsAtOnce", func(t *testing.T) {
		calls := 0
		boom := errors.New("boom")
		err := models.RetryTx(ctx, db, func(tx *gorm.DB) error { calls++; return boom })
		if !errors.Is(err, boom) || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})

	t.Run("InsideATransactionRunsOnceAndLeavesRetryingToTheOuter", func(t *testing.T) {
		inner := 0
		outer := 0
		err := models.RetryTx(ctx, db, func(tx *gorm.DB) error {
			outer++
			return models.RetryTx(ctx, tx, func(tx *gorm.DB) error {
				inner++
				if !models.InTransaction(tx) {
					t.Error("inner function not in the transaction")
				}
				if outer < 2 {
					return models.ErrTxConflict
				}
				return nil
			})
		})
		if err != nil || outer != 2 || inner != 2 {
			t.Fatalf("err %v, outer %d, inner %d", err, outer, inner)
		}
	})

	t.Run("GivesUpWhenTheContextEnds", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		calls := 0
		err := models.RetryTx(ctx, db, func(tx *gorm.DB) error {
			calls++
			cancel()
			return models.ErrTxConflict
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
}

func TestIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1213, Message: "Deadlock found"}, true},
		{fmt.Errorf("x: %w", &mysql.MySQLError{Number: 1205, Message: "Lock wait timeout"}), true},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, false},
		{models.ErrTxConflict, true},
		{errors.New("other"), false},
		{nil, false},
	} {
		if got := models.IsRetryable(tc.err); got != tc.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Two transactions lock two rows in opposite orders, so InnoDB must kill one
// with a deadlock (1213); RetryTx runs it again and both get through.
func TestRetryTxSurvivesARealDeadlock(t *testing.T) {
	db := dbtest.MySQL(t)
	w := newWorld(t, db)
	res := w.resolve(t,
		models.Observation{AppID: w.appA, OpenID: "o1", UnionID: "u1", Source: models.SourceSync},
		models.Observation{AppID: w.appA, OpenID: "o2", UnionID: "u2", Source: models.SourceSync})
	a, b := res.Outcomes[0].CustomerID, res.Outcomes[1].CustomerID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var attempts atomic.Int64
	holding := sync.WaitGroup{}
	holding.Add(2)
	var once [2]sync.Once
	lockBoth := func(i int, first, second int64) error {
		return models.RetryTx(ctx, db, func(tx *gorm.DB) error {
			attempts.Add(1)
			touch := func(id int64) error {
				return tx.Exec("UPDATE customers SET nickname = ? WHERE tenant_id = ? AND id = ?", fmt.Sprint(i), w.tenant, id).Error
			}
			if err := touch(first); err != nil {
				return err
			}
			once[i].Do(func() { holding.Done(); holding.Wait() }) // both hold their first row
			return touch(second)
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- lockBoth(0, a, b) }()
	go func() { errs <- lockBoth(1, b, a) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a transaction failed despite retries: %v", err)
		}
	}
	if attempts.Load() < 3 {
		t.Fatalf("%d attempts: the deadlock did not happen, so nothing was retried", attempts.Load())
	}
}
