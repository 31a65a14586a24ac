package models

import (
	"database/sql/driver"
	"errors"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// IsUnavailable reports whether err says the database could not be reached
// or went away mid-query (server stopped, restarting, network gone), as
// opposed to a query it refused: the page then says "try again in a moment"
// rather than "something went wrong", and nothing is worth logging as a bug.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &ne):
		return true
	case errors.As(err, &me):
		// 1040 too many connections, 1053 server shutdown in progress,
		// 1927 connection was killed (MariaDB), 4031 idle client disconnected.
		switch me.Number {
		case 1040, 1053, 1927, 4031:
			return true
		}
	}
	return false
}
