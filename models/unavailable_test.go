package models_test

import (
	"net"
	"testing"

	"oneid/migrations/dbtest"
	"oneid/models"
)

// A database that does not answer is "unavailable"; a query it refuses is not.
func TestIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	_, err = models.Open("mysql://root@" + addr + "/oneid")
	if err == nil || !models.IsUnavailable(err) {
		t.Fatalf("a closed port: %v, IsUnavailable false", err)
	}
	db := dbtest.MySQL(t)
	var n int
	err = db.Raw("SELECT * FROM no_such_table").Scan(&n).Error
	if err == nil || models.IsUnavailable(err) {
		t.Fatalf("a refused query: %v, IsUnavailable true", err)
	}
	if models.IsUnavailable(models.ErrNotFound) || models.IsUnavailable(nil) {
		t.Fatal("not found is not unavailable")
	}
}
