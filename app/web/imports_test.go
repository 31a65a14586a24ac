package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"oneid/app/ingest"
	"oneid/app/jobs"
	"oneid/migrations/dbtest"
	"oneid/models"
)

// upload posts a file as the import form does (multipart, with the page's
// CSRF token).
func (c *client) upload(path, name string, data []byte) *response {
	c.h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("_csrf", c.csrf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for k, vs := range c.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for n, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	res, err := c.app.Test(req, -1)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return &response{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// importWorld is a workspace with an official account and a mini-program in
// one open-platform account, an account in none, and another workspace's app.
type importWorld struct {
	*ingestWorld
	oa, mini, lone, others string
}

func newImportWorld(t *testing.T, inlineRows int) *importWorld {
	w := &importWorld{ingestWorld: newIngestWorld(t, dbtest.MySQL(t), func(o *ingestOptions) { o.inlineRows = inlineRows })}
	oa, _ := w.bindApp(t, "import oa", appSetup{})
	mini, _ := w.bindApp(t, "import mini", appSetup{kind: "miniprogram"})
	lone, _ := w.bindApp(t, "import lone", appSetup{noOpen: true})
	wsB := w.workspace("Other Import Co")
	other, _ := w.bindApp(t, "other oa", appSetup{ws: wsB, open: w.openAccount(t, wsB)})
	w.oa, w.mini, w.lone, w.others = oa.AppID, mini.AppID, lone.AppID, other.AppID
	return w
}

// openIDn is a 28-character OpenID made of a prefix and a number.
func openIDn(prefix string, n int) string { return fmt.Sprintf("o%s%0*d", prefix, 27-len(prefix), n) }

func TestImportRefusesAFileWithProblemsAndWritesNothing(t *testing.T) {
	w := newImportWorld(t, 5000)
	admin := w.signedIn(w.ws.people[models.RoleAdmin])
	admin.get(w.ws.path("imports"))
	file := strings.Join([]string{
		"appid,openid,unionid,subscribed,subscribe_time",
		w.oa + "," + openIDn("a", 1) + ",uAAAAAAAAAAAAAAAAAAAAAAAAAA1,1,2024-05-01 09:30:00", // fine
		w.others + "," + openIDn("a", 2) + ",,1,",                                            // 3: another workspace's app
		"wx0000000000000000," + openIDn("a", 3) + ",,,",                                      // 4: unknown app
		w.oa + ",null,,,",                                                // 5: placeholder openid
		w.oa + "," + openIDn("a", 4) + ",,maybe,",                        // 6: subscribed
		w.oa + "," + openIDn("a", 5) + ",,1,yesterday",                   // 7: time
		w.mini + "," + openIDn("a", 6) + ",,1,",                          // 8: mini-program followers
		w.oa + "," + openIDn("a", 1) + ",uBBBBBBBBBBBBBBBBBBBBBBBBBB1,,", // 9: conflicting unionid
		w.oa + "," + openIDn("a", 7) + ",uAAAAAAAAAAAAAAAAAAAAAAAAAA1,,", // 10: unionid of row 2's openid
		w.oa + "," + openIDn("a", 8),                                     // 11: too few fields
		"," + openIDn("a", 9) + ",,,",                                    // 12: appid missing
	}, "\n")
	before := w.rows("identities")
	want := []struct {
		row    int
		column string
		key    string
	}{
		{3, "appid", "unknown_app"}, {4, "appid", "unknown_app"}, {5, "openid", "bad_id"}, {6, "subscribed", "bad_subscribed"},
		{7, "subscribe_time", "bad_time"}, {8, "subscribed", "not_followable"}, {9, "unionid", "conflicting_unionid"},
		{10, "unionid", "unionid_twice"}, {11, "", "field_count"}, {12, "appid", "required"},
	}
	for _, lang := range []string{"en", "zh-CN"} {
		r := speaking(admin, lang).upload(w.ws.path("imports"), "bad.csv", []byte(file))
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d\n%s", lang, r.status, r.body)
		}
		for _, p := range want {
			marker := fmt.Sprintf(`data-row="%d" data-column="%s" data-key="%s"`, p.row, p.column, p.key)
			if !strings.Contains(r.body, marker) {
				t.Errorf("%s: no problem %s", lang, marker)
			}
		}
		if n := strings.Count(r.body, `data-testid="import-problem"`); n != len(want) {
			t.Errorf("%s: %d problems listed, want %d", lang, n, len(want))
		}
		text := pageText(r)
		for _, msg := range []string{message(lang, "imports.problem.unknown_app", w.others), message(lang, "imports.problem.unionid_twice", "uAAAAAAAAAAAAAAAAAAAAAAAAAA1", 2)} {
			if !strings.Contains(text, msg) {
				t.Errorf("%s: the page does not say %q", lang, msg)
			}
		}
		if strings.Contains(text, "Other Import Co") {
			t.Error("the page names the other workspace")
		}
	}
	if after := w.rows("identities"); after != before {
		t.Fatalf("a refused file wrote %d identities", after-before)
	}
	if !w.audited(w.ws.tenant.ID, models.AuditImportRejected, "bad.csv") {
		t.Fatal("the refusal is not audited")
	}

	for name, c := range map[string]struct {
		file []byte
		key  string
	}{
		"NoHeaderColumns": {[]byte("appid,openid\n" + w.oa + "," + openIDn("b", 1) + "\n"), `data-key="missing_column"`},
		"UnknownColumn":   {[]byte("appid,openid,unionid,email\n"), `data-key="unknown_column"`},
		"NotUTF8":         {[]byte("appid,openid,unionid\n" + w.oa + ",o\xc4\xe3\xba\xc3,\n"), `data-key="not_utf8"`},
		"HeaderOnly":      {[]byte("\xef\xbb\xbfappid,openid,unionid\r\n"), `data-key="no_rows"`},
		"BrokenQuote":     {[]byte("appid,openid,unionid\n\"" + w.oa + "," + openIDn("b", 2) + ",\n"), `data-key="bad_csv"`},
	} {
		t.Run(name, func(t *testing.T) {
			r := admin.upload(w.ws.path("imports"), name+".csv", c.file)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, c.key) {
				t.Fatalf("%d\n%s", r.status, r.body)
			}
		})
	}
	if r := admin.upload(w.ws.path("imports"), "empty.csv", nil); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "import-error") {
		t.Fatalf("no file: %d", r.status)
	}
	if after := w.rows("identities"); after != before {
		t.Fatalf("refused files wrote %d identities", after-before)
	}
}

func TestImportWritesAGoodFile(t *testing.T) {
	w := newImportWorld(t, 5000)
	admin := w.signedIn(w.ws.people[models.RoleAdmin])
	admin.get(w.ws.path("imports"))
	var b strings.Builder
	b.WriteString("\xef\xbb\xbfOpenID,AppID,UnionID,Subscribed,Subscribe_Time\r\n") // BOM, CRLF, any order and case
	for i := 0; i < 40; i++ {
		u := fmt.Sprintf("u%027d", i)
		fmt.Fprintf(&b, "%s,%s,%s,1,%d\r\n", openIDn("oa", i), w.oa, u, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Unix()+int64(i))
		fmt.Fprintf(&b, "%s,%s,%s,,\r\n", openIDn("mp", i), w.mini, u) // the same person in the mini-program
	}
	fmt.Fprintf(&b, "%s,%s,,0,2023-12-31 08:00\r\n", openIDn("lo", 1), w.lone)
	fmt.Fprintf(&b, "%s,%s,,,\r\n", openIDn("oa", 99), w.oa)
	fmt.Fprintf(&b, "%s,%s,,,\r\n", openIDn("oa", 99), w.oa) // a repeated row
	r := admin.upload(w.ws.path("imports"), "客户.csv", []byte(b.String()))
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="import-done"`) || !strings.Contains(r.body, `data-created="82"`) {
		t.Fatalf("%d\n%.3000s", r.status, pageText(r))
	}
	tid := w.ws.tenant.ID
	if n := w.count("identities", tid); n != 82 {
		t.Fatalf("%d identities", n)
	}
	if n := w.count("customers", tid); n != 42 {
		t.Fatalf("%d customers, want 40 linked and 2 unlinked", n)
	}
	c, err := models.FindCustomerByUnionID(w.db, tid, w.open.OpenAppID, fmt.Sprintf("u%027d", 7))
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := models.IdentitiesOfCustomer(w.db, tid, c.ID)
	if len(ids) != 2 || !ids[0].Subscribed || ids[0].SubscribeTime == nil || ids[0].SubscribeTime.Unix() != time.Date(2024, 5, 1, 0, 0, 7, 0, time.UTC).Unix() {
		t.Fatalf("%+v", ids)
	}
	if !w.audited(tid, models.AuditImportDone, "客户.csv") {
		t.Fatal("not audited")
	}
	// The same file again changes nothing.
	admin.get(w.ws.path("imports"))
	r = admin.upload(w.ws.path("imports"), "客户.csv", []byte(b.String()))
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-created="0"`) || w.count("identities", tid) != 82 {
		t.Fatalf("again: %d", r.status)
	}
}

// A file above the inline size runs as a job with progress; the job writes
// every row and is audited once.
func TestImportLargeFileRunsAsAJob(t *testing.T) {
	w := newImportWorld(t, 10)
	admin := w.signedIn(w.ws.people[models.RoleAdmin])
	admin.get(w.ws.path("imports"))
	var b strings.Builder
	b.WriteString("appid,openid,unionid\n")
	for i := 0; i < 120; i++ {
		fmt.Fprintf(&b, "%s,%s,%s\n", w.oa, openIDn("job", i), fmt.Sprintf("u%027d", 1000+i))
	}
	r := admin.upload(w.ws.path("imports"), "big.csv", []byte(b.String()))
	if r.status != http.StatusSeeOther || !strings.Contains(r.location(), w.ws.path("imports/")) {
		t.Fatalf("%d %q\n%s", r.status, r.location(), r.body)
	}
	page := admin.get(r.location())
	if !strings.Contains(page.body, `data-state="queued"`) || !strings.Contains(page.body, `hx-trigger="every 2s"`) {
		t.Fatalf("job page:\n%s", page.body)
	}
	// The same file while it waits is refused: it would be imported twice.
	if again := admin.upload(w.ws.path("imports"), "big.csv", []byte(b.String())); again.status != http.StatusConflict {
		t.Fatalf("twice: %d", again.status)
	}
	if n := w.count("identities", w.ws.tenant.ID); n != 0 {
		t.Fatalf("queued, yet %d identities", n)
	}

	runner := jobs.New(jobs.Config{DB: w.db, Poll: 20 * time.Millisecond})
	runner.Register(ingest.NewImporter(ingest.ImporterConfig{DB: w.db}).Kind())
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	waitFor(t, func() bool {
		return strings.Contains(admin.get(r.location()).body, `data-state="succeeded"`)
	})
	stop()
	<-done
	page = admin.get(r.location())
	if !strings.Contains(page.body, `data-created="120"`) || strings.Contains(page.body, "hx-trigger") {
		t.Fatalf("%s", page.body)
	}
	if n := w.count("identities", w.ws.tenant.ID); n != 120 {
		t.Fatalf("%d identities", n)
	}
	if n := w.count("import_chunks", w.ws.tenant.ID); n != 0 {
		t.Fatalf("%d chunks left", n)
	}
	if !w.audited(w.ws.tenant.ID, models.AuditImportDone, "big.csv") {
		t.Fatal("not audited")
	}
	if list := admin.get(w.ws.path("imports")); !strings.Contains(list.body, `data-testid="import-job" data-state="succeeded"`) {
		t.Fatal("the list does not show the job")
	}
}
