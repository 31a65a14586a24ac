package models_test

import (
	"testing"
	"time"

	"gorm.io/gorm"

	"oneid/migrations/dbtest"
	"oneid/models"
)

func TestSignInThrottle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		locked := func(email, ip string, at time.Time) bool {
			t.Helper()
			l, err := models.SignInLocked(db, email, ip, at)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		fail := func(email, ip string, at time.Time) {
			t.Helper()
			if err := models.SignInFailed(db, email, ip, at); err != nil {
				t.Fatal(err)
			}
		}
		t.Run("LocksAnAccountAfterFiveFailures", func(t *testing.T) {
			for i := range 4 {
				fail("a@example.com", "10.0.0.1", t0.Add(time.Duration(i)*time.Second))
			}
			if locked("a@example.com", "10.0.0.2", t0.Add(time.Minute)) {
				t.Fatal("locked after four failures")
			}
			fail("A@example.com ", "10.0.0.1", t0.Add(time.Minute))
			if !locked("a@example.com", "10.0.0.2", t0.Add(2*time.Minute)) {
				t.Fatal("not locked after five failures, from any address")
			}
			if locked("b@example.com", "10.0.0.2", t0.Add(2*time.Minute)) {
				t.Fatal("another account is locked too")
			}
			if locked("a@example.com", "10.0.0.2", t0.Add(17*time.Minute)) {
				t.Fatal("still locked after the lock ended")
			}
		})
		t.Run("ForgetsFailuresOutsideTheWindow", func(t *testing.T) {
			for i := range 4 {
				fail("slow@example.com", "10.0.1.1", t0.Add(time.Duration(i)*10*time.Minute))
			}
			if locked("slow@example.com", "10.0.1.1", t0.Add(41*time.Minute)) {
				t.Fatal("four failures 10 minutes apart locked the account")
			}
		})
		t.Run("SuccessClearsTheAccount", func(t *testing.T) {
			for range 4 {
				fail("ok@example.com", "10.0.2.1", t0)
			}
			if err := models.SignInSucceeded(db, "ok@example.com"); err != nil {
				t.Fatal(err)
			}
			fail("ok@example.com", "10.0.2.1", t0)
			if locked("ok@example.com", "10.0.2.9", t0) {
				t.Fatal("success did not reset the count")
			}
		})
		t.Run("LocksAnAddressTryingManyAccounts", func(t *testing.T) {
			for i := range 30 {
				fail(string(rune('a'+i%26))+"-spray@example.com", "10.9.9.9", t0)
			}
			if !locked("fresh@example.com", "10.9.9.9", t0.Add(time.Second)) {
				t.Fatal("address not locked after 30 failures")
			}
			if locked("fresh@example.com", "10.9.9.8", t0.Add(time.Second)) {
				t.Fatal("another address locked")
			}
		})
	})
}
