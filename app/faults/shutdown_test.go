package faults_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"oneid/models"
)

// slowStream is a streamed export read slowly, as over a poor line.
type slowStream struct {
	body    []byte
	status  int
	err     error
	started chan struct{} // closed when the headers are in
	took    time.Duration
}

// SIGTERM to a real process with slow requests in flight (streamed exports
// read at about 1 MB/s, and page requests): every request that had reached
// OneID completes with 200 and its full body (each export equal to a direct
// export of the database), new connections are refused as soon as the
// signal is handled, and the process exits 0 well within 25 s.
func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// Every export streams, however large.
	p := startOneID(t, "oneid", w.env("ONEID_EXPORT_STREAM_MAX=10000000"))
	br := newBrowser(t, p.base)
	ws := signUp(t, w, br, "Fault Shutdown")
	n := pick(12_000, 40_000)
	if _, err := models.Seed(context.Background(), w.db, ws.id, models.SeedOptions{Customers: n, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	br.mustGet(ws.path("customers/export?shape=identities"))
	csrf := br.csrf

	// Three: a workspace streams at most three exports at once (more get 429).
	streams := make([]*slowStream, 3)
	var wg sync.WaitGroup
	for i := range streams {
		s := &slowStream{started: make(chan struct{})}
		streams[i] = s
		wg.Go(func() {
			start := time.Now()
			defer func() { s.took = time.Since(start) }()
			form := url.Values{"shape": {models.ExportIdentities}, "_csrf": {csrf}}
			req, _ := http.NewRequest(http.MethodPost, p.base+ws.path("customers/export"), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			// A small receive buffer: the server cannot park the file in
			// the kernel and be done; it writes as the reader reads.
			dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
			}}
			c := &http.Client{Jar: br.c.Jar, Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true, DialContext: dialer.DialContext}}
			res, err := c.Do(req)
			if err != nil {
				s.err = err
				close(s.started)
				return
			}
			defer res.Body.Close()
			s.status = res.StatusCode
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
				s.err = errors.New("not a CSV stream: " + ct)
			}
			close(s.started)
			var buf bytes.Buffer
			chunk := make([]byte, 32<<10)
			for {
				k, err := res.Body.Read(chunk)
				buf.Write(chunk[:k])
				if err == io.EOF {
					break
				}
				if err != nil {
					s.err = err
					break
				}
				time.Sleep(30 * time.Millisecond) // ~1 MB/s
			}
			s.body = buf.Bytes()
		})
	}
	for _, s := range streams {
		<-s.started
	}
	// Page requests in flight too, each on a connection of its own.
	type pageResult struct {
		status int
		n      int
		err    error
		sentAt time.Time
		doneAt time.Time
	}
	time.Sleep(300 * time.Millisecond) // the exports are well under way
	pages := make(chan pageResult, 100)
	var pageWG sync.WaitGroup
	for range pick(8, 20) {
		pageWG.Go(func() {
			c := &http.Client{Jar: br.c.Jar, Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
			r := pageResult{sentAt: time.Now()}
			res, err := c.Get(p.base + ws.path("customers"))
			if err == nil {
				b, rerr := io.ReadAll(res.Body)
				res.Body.Close()
				r.status, r.n, err = res.StatusCode, len(b), rerr
			}
			r.err, r.doneAt = err, time.Now()
			pages <- r
		})
	}
	time.Sleep(30 * time.Millisecond) // the pages are on their way
	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener is closed.
	refusedIn := waitFor(t, "new connections refused", 5*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		conn.Close()
		return false
	})
	if !p.wait(25 * time.Second) {
		t.Fatalf("still running 25 s after SIGTERM")
	}
	exitedIn := time.Since(signalled)
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", p.err, tail(p.log.String(), 3000))
	}
	wg.Wait()
	pageWG.Wait()
	close(pages)
	pagesAfter, pageCount := 0, 0
	for pr := range pages {
		pageCount++
		if pr.doneAt.After(signalled) {
			pagesAfter++
		}
		if pr.err != nil || pr.status != http.StatusOK || pr.n == 0 {
			t.Errorf("a page in flight (sent %v before the signal): %d, %d bytes, %v", signalled.Sub(pr.sentAt), pr.status, pr.n, pr.err)
		}
	}
	for i, s := range streams {
		if s.err != nil || s.status != http.StatusOK {
			t.Errorf("stream %d: %d, %d bytes, %v", i, s.status, len(s.body), s.err)
		}
	}
	// Every export whole, equal to a direct export of the same database.
	var exports []models.Export
	w.db.Scopes(models.ForTenant(ws.id)).Order("id").Find(&exports)
	if len(exports) != len(streams) {
		t.Fatalf("%d export records for %d streams", len(exports), len(streams))
	}
	direct := directExport(t, w, ws.id, exports[0].ID)
	slowest := time.Duration(0)
	for i, s := range streams {
		if s.err != nil || s.status != http.StatusOK || !bytes.Equal(s.body, direct) {
			t.Fatalf("stream %d: %d, %d of %d bytes, %v", i, s.status, len(s.body), len(direct), s.err)
		}
		slowest = max(slowest, s.took)
	}
	// The streams were still being written when the signal came: their
	// records were finished after it, and before the process exited.
	writing := 0
	for _, e := range exports {
		if e.State != models.ExportDone || e.Bytes != int64(len(direct)) || e.FinishedAt == nil {
			t.Fatalf("export %d recorded %s with %d bytes; the file has %d", e.ID, e.State, e.Bytes, len(direct))
		}
		if e.FinishedAt.After(signalled) {
			writing++
		}
	}
	if writing == 0 {
		t.Fatalf("every export was written before SIGTERM: nothing was in flight")
	}
	t.Logf("%d exports of %d bytes each (slowest %v; %d still being written at the signal) and %d pages (%d answered after the signal): all 200 and whole; new connections refused %v after SIGTERM; exited 0 after %v",
		len(streams), len(direct), slowest.Round(time.Millisecond), writing, pageCount, pagesAfter, refusedIn.Round(time.Millisecond), exitedIn.Round(time.Millisecond))
}
