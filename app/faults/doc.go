// Package faults holds no code of its own: its tests prove that OneID keeps
// working under faults and with several instances (issue 8) — two `oneid
// serve` processes on one MySQL database, MySQL stopped and started under
// load, SIGKILL during jobs, WeChat's errors from the simulator, and SIGTERM
// with requests in flight. They drive real processes (the oneid binary,
// built once per run), a real MySQL and the real HTTP routes; the WeChat
// simulator is the only fake.
//
// `go test ./app/faults` runs the short version of each (CI); `make faults`
// (ONEID_LONG=1) runs the long ones: more load, longer outages, more kills.
package faults
