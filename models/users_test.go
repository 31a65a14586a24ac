package models_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"oneid/models"
)

func TestPasswordHasher(t *testing.T) {
	h := models.NewPasswordHasher(0)
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("UsesOWASPArgon2idParameters", func(t *testing.T) {
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("hash %q", hash)
		}
	})
	t.Run("VerifiesTheRightPassword", func(t *testing.T) {
		if err := h.Verify(ctx, hash, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("RefusesAWrongPassword", func(t *testing.T) {
		if err := h.Verify(ctx, hash, "correct horse batterY"); !errors.Is(err, models.ErrBadPassword) {
			t.Fatalf("got %v, want ErrBadPassword", err)
		}
	})
	t.Run("SaltsEveryHash", func(t *testing.T) {
		again, _ := h.Hash(ctx, "correct horse battery")
		if again == hash {
			t.Fatal("two hashes of one password are equal")
		}
	})
	t.Run("TakesAsLongForNobody", func(t *testing.T) {
		start := time.Now()
		_ = h.Verify(ctx, hash, "wrong")
		real := time.Since(start)
		start = time.Now()
		h.VerifyNobody(ctx, "wrong")
		nobody := time.Since(start)
		if nobody < real/3 {
			t.Fatalf("verifying nobody took %v, a real verification %v", nobody, real)
		}
	})
	t.Run("BoundsConcurrentHashes", func(t *testing.T) {
		// With one slot, a waiting hash gives up when its context ends.
		one := models.NewPasswordHasher(1)
		var wg sync.WaitGroup
		var cancelled atomic.Int32
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := one.Hash(ctx, "pw"); errors.Is(err, context.DeadlineExceeded) {
					cancelled.Add(1)
				}
			}()
		}
		wg.Wait()
		if cancelled.Load() == 0 {
			t.Fatal("four hashes ran at once through one slot")
		}
	})
}
