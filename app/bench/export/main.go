// Command export measures PRODUCT.md's CSV export target (make bench-export):
// it seeds a tenant of N customers once into a database of its own, starts
// the real oneid binary on loopback as a separate process (so its peak RSS is
// the server's alone), signs a marketer in, and downloads the profiles export
// of the whole tenant over the real route. As the reference it times
// `mysql --quick` streaming the equivalent query. Its last line is
//
//	bench-export rows=N seconds=S rows_per_s=R peak_rss_mb=M first_byte_ms=F mysql_quick_seconds=Q
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"

	"oneid/app/bench/benchkit"
	"oneid/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench-export:", err)
		}
		os.Exit(1)
	}
}

const (
	benchSlug     = "bench-export"
	benchEmail    = "bench-export-marketer@example.com"
	benchPassword = "bench password 1"
)

type bench struct {
	out    io.Writer
	n      int
	server string // MySQL server URL, without a database
	dbName string
	db     *gorm.DB
	tenant *models.Tenant
	cold   bool // measure without warming the buffer pool first
}

func (b *bench) logf(format string, args ...any) { fmt.Fprintf(b.out, format+"\n", args...) }

func (b *bench) openDatabase(ctx context.Context) error {
	var err error
	b.db, err = benchkit.OpenDatabase(ctx, b.server, b.dbName, true, b.logf)
	return err
}

// ensureTenant finds or makes the benchmark tenant with a marketer to sign in
// as, and seeds it up to n customers (once: later runs reuse them).
func (b *bench) ensureTenant(ctx context.Context) error {
	tenant, err := benchkit.EnsureTenant(ctx, b.db, benchkit.Tenant{Slug: benchSlug, Name: "Bench Export",
		AdminEmail: "bench-export-admin@example.com", Email: benchEmail, Password: benchPassword})
	if err != nil {
		return err
	}
	b.tenant = tenant
	_, err = benchkit.SeedCustomers(ctx, b.db, tenant, b.n, b.dbName+"/"+benchSlug, b.logf)
	return err
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("bench-export", flag.ContinueOnError)
	fs.SetOutput(out)
	n := fs.Int("profiles", 1000000, "customers in the benchmark tenant, all exported (seeded once, then reused)")
	server := fs.String("mysql", "", "MySQL server URL without a database (default $ONEID_BENCH_MYSQL_URL or mysql://root@127.0.0.1:3306/)")
	dbName := fs.String("database", "oneid_bench_export", "the benchmark's own database (created if missing)")
	binary := fs.String("oneid", "", "the oneid binary to serve with (default: go build ./app into a temporary folder)")
	shape := fs.String("shape", models.ExportProfiles, "profiles or identities")
	seedOnly := fs.Bool("seed-only", false, "seed the tenant and stop")
	cold := fs.Bool("cold", false, "do not warm MariaDB's buffer pool with the tenant first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b := &bench{out: out, n: *n, server: benchkit.MySQLServer(*server, getenv), dbName: *dbName, cold: *cold}
	if err := b.openDatabase(ctx); err != nil {
		return err
	}
	if err := b.ensureTenant(ctx); err != nil {
		return err
	}
	if *seedOnly {
		return nil
	}
	if *binary == "" {
		path, cleanup, err := benchkit.BuildOneID(ctx, out)
		if err != nil {
			return err
		}
		defer cleanup()
		*binary = path
	}
	// The streaming limit above the tenant's size, so the whole export goes
	// straight to the client, as a small one would.
	srv, err := benchkit.StartOneID(ctx, *binary, b.server+b.dbName, "ONEID_EXPORT_STREAM_MAX="+strconv.Itoa(b.n*4))
	if err != nil {
		return err
	}
	defer srv.Stop()
	return b.measure(ctx, srv, *shape)
}

// signIn signs the marketer in and returns the client and a CSRF token.
func (b *bench) signIn(base string) (*http.Client, string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if err := benchkit.SignIn(c, base, benchEmail, benchPassword); err != nil {
		return nil, "", err
	}
	// The confirmation page, as a person would see it first; its token is
	// the session's.
	start := time.Now()
	token, err := benchkit.CSRFToken(c, base+"/t/"+benchSlug+"/customers/export")
	if err != nil {
		return nil, "", err
	}
	b.logf("confirmation page (exact count) in %.0f ms", ms(time.Since(start)))
	return c, token, nil
}

// recordCounter counts CSV records: line ends outside quotes.
type recordCounter struct {
	quoted bool
	n      int64
}

func (r *recordCounter) Write(p []byte) (int, error) {
	if !r.quoted && bytes.IndexByte(p, '"') < 0 {
		r.n += int64(bytes.Count(p, []byte{'\n'}))
		return len(p), nil
	}
	for _, c := range p {
		switch {
		case c == '"':
			r.quoted = !r.quoted
		case c == '\n' && !r.quoted:
			r.n++
		}
	}
	return len(p), nil
}

func (b *bench) measure(ctx context.Context, srv *benchkit.Process, shape string) error {
	client, csrf, err := b.signIn(srv.Base)
	if err != nil {
		return err
	}
	// Both the export and the mysql --quick reference then read a warm pool
	// (--cold leaves whatever the last benchmark left there).
	if !b.cold {
		warm, err := benchkit.WarmTenant(ctx, b.db, b.tenant.ID, "customers", "identities")
		if err != nil {
			return err
		}
		b.logf("buffer pool warmed with the tenant's customers and identities in %.1fs", warm.Seconds())
	}
	form := url.Values{"shape": {shape}, "bom": {"1"}, "headers": {"labels"}, "_csrf": {csrf}}
	b.logf("exporting %s of %d customers over %s; load before: %s, %d CPUs", shape, b.n, srv.Base, benchkit.LoadAvg(), runtime.NumCPU())
	start := time.Now()
	res, err := client.PostForm(srv.Base+"/t/"+benchSlug+"/customers/export", form)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 2000))
		return fmt.Errorf("export: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	buf := make([]byte, 256<<10)
	var counter recordCounter
	var firstByte time.Duration
	var size int64
	for {
		k, err := res.Body.Read(buf)
		if k > 0 {
			if firstByte == 0 {
				firstByte = time.Since(start)
			}
			size += int64(k)
			counter.Write(buf[:k])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("export cut off after %d bytes: %w", size, err)
		}
	}
	took := time.Since(start)
	rows := counter.n - 1 // the header
	rss, err := srv.PeakRSS()
	if err != nil {
		return err
	}
	loadAfter := benchkit.LoadAvg()
	quick, err := b.mysqlQuick(ctx, shape)
	if err != nil {
		return err
	}
	b.logf("%d rows, %.1f MB in %.2fs; first byte after %.0f ms; server peak RSS %.1f MB; load after: %s",
		rows, float64(size)/(1<<20), took.Seconds(), ms(firstByte), rss, loadAfter)
	if int(rows) < b.n && shape == models.ExportProfiles {
		return fmt.Errorf("the export holds %d rows, the tenant %d customers", rows, b.n)
	}
	fmt.Fprintf(b.out, "bench-export rows=%d seconds=%.2f rows_per_s=%.0f peak_rss_mb=%.1f first_byte_ms=%.0f mysql_quick_seconds=%.2f\n",
		rows, took.Seconds(), float64(rows)/took.Seconds(), rss, ms(firstByte), quick)
	return nil
}

// mysqlQuick times `mysql --quick` streaming the same rows to nowhere: the
// profiles pivoted from identities (one OpenID column per app), or the
// identities with their customers, in the export's order (customer id).
func (b *bench) mysqlQuick(ctx context.Context, shape string) (float64, error) {
	apps, err := models.BrowseApps(b.db.WithContext(ctx), b.tenant.ID)
	if err != nil {
		return 0, err
	}
	t := strconv.FormatInt(b.tenant.ID, 10)
	var q string
	if shape == models.ExportIdentities {
		q = "SELECT c.id, c.unionid, i.app_id, i.openid, i.subscribed, i.subscribe_time, i.source, i.first_seen_at, i.last_seen_at" +
			" FROM customers c JOIN identities i ON i.tenant_id = c.tenant_id AND i.customer_id = c.id WHERE c.tenant_id = " + t +
			" ORDER BY c.id, i.app_id, i.id"
	} else {
		var cols []string
		for _, a := range apps {
			cols = append(cols, fmt.Sprintf("MAX(CASE WHEN i.app_id = %d THEN i.openid END)", a.ID))
		}
		q = "SELECT c.id, c.unionid, c.nickname, c.first_seen_at, c.last_seen_at, " + strings.Join(cols, ", ") +
			" FROM customers c LEFT JOIN identities i ON i.tenant_id = c.tenant_id AND i.customer_id = c.id WHERE c.tenant_id = " + t +
			" GROUP BY c.id ORDER BY c.id"
	}
	u, err := url.Parse(b.server)
	if err != nil {
		return 0, err
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "3306"
	}
	args := []string{"--quick", "--batch", "--skip-column-names", "-h", host, "-P", port, "-u", u.User.Username(), b.dbName, "-e", q}
	cmd := exec.CommandContext(ctx, "mysql", args...)
	if pw, ok := u.User.Password(); ok {
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+pw)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("mysql --quick: %w", err)
	}
	return time.Since(start).Seconds(), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
