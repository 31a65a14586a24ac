package ingest

import (
	"bytes"
	"context"
	"encoding/csv"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"oneid/models"
	"oneid/views"
)

// fuzzImportApps are the workspace of the import fuzzer: a service account and
// a mini program, bound, and an unbound subscription account whose rows must
// be refused.
func fuzzImportApps() []models.App {
	bound := func(s string) *string { return &s }
	return []models.App{
		{ID: 11, TenantID: 1, AppID: "wx00000000000000a1", BoundAppID: bound("wx00000000000000a1"), Kind: models.KindService},
		{ID: 12, TenantID: 1, AppID: "wx00000000000000b2", BoundAppID: bound("wx00000000000000b2"), Kind: models.KindMiniProgram},
		{ID: 13, TenantID: 1, AppID: "wx00000000000000c3", Kind: models.KindSubscription},
	}
}

var importProblemKeys = map[string]bool{
	ProblemNotUTF8: true, ProblemEmpty: true, ProblemTooLarge: true, ProblemTooManyRows: true, ProblemBadCSV: true,
	ProblemUnknownColumn: true, ProblemDuplicateCol: true, ProblemMissingColumn: true, ProblemFieldCount: true,
	ProblemRequired: true, ProblemUnknownApp: true, ProblemBadID: true, ProblemBadSubscribed: true, ProblemBadTime: true,
	ProblemNotFollowable: true, ProblemConflict: true, ProblemUnionIDTwice: true, ProblemNoRows: true,
}

// checkImport holds ParseImport to what the import page and the writers rely
// on, for any file:
//   - a file is either accepted (rows, no problems) or refused (problems, no
//     rows), and a refusal lists at most a thousand problems (and the row cap);
//   - every problem has a message in both languages, a row within the file and
//     a value shortened to 40 characters;
//   - every accepted row is a valid id in a bound app, a mini program is never
//     "following", an (app, openid) pair appears once and an (app, unionid)
//     names one openid;
//   - the rows survive the import job's chunk encoding unchanged;
//   - a byte order mark changes nothing, and the accepted rows written back as
//     a plain CSV are accepted as the same rows.
func checkImport(t *testing.T, data []byte) {
	t.Helper()
	apps := fuzzImportApps()
	file, problems := ParseImport(data, apps)
	if (file == nil) == (len(problems) == 0) {
		t.Fatalf("ParseImport gave file %v and %d problems: exactly one is expected", file != nil, len(problems))
	}
	if len(problems) > maxImportProblems+1 {
		t.Fatalf("%d problems, more than the cap", len(problems))
	}
	lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1
	for _, p := range problems {
		if !importProblemKeys[p.Problem] {
			t.Fatalf("problem %+v has an unknown key", p)
		}
		for _, l := range views.Locales() {
			if ctx := views.WithLocale(context.Background(), l); !views.Has(ctx, "imports.problem."+p.Problem) {
				t.Fatalf("problem %q has no %s message", p.Problem, l)
			}
		}
		if p.Row < 0 || p.Row > lines {
			t.Fatalf("problem %+v names row %d of a file of %d lines", p, p.Row, lines)
		}
		if p.OtherRow < 0 || p.OtherRow >= max(p.Row, 1) && p.OtherRow != 0 {
			t.Fatalf("problem %+v names another row that is not before it", p)
		}
		if utf8.RuneCountInString(p.Value) > 41 || !utf8.ValidString(p.Value) {
			t.Fatalf("problem value %q is not shortened UTF-8", p.Value)
		}
	}
	if file == nil {
		if !bytes.HasPrefix(data, []byte("\ufeff")) && len(data) < MaxImportBytes {
			if f2, p2 := ParseImport(append([]byte("\ufeff"), data...), apps); f2 != nil || !reflect.DeepEqual(p2, problems) {
				t.Fatalf("a BOM changed the problems: %+v then %+v", problems, p2)
			}
		}
		return
	}

	byID := map[int64]*models.App{}
	for i := range apps {
		if apps[i].IsBound() {
			byID[apps[i].ID] = &apps[i]
		}
	}
	if len(file.Rows) == 0 || len(file.Rows) > file.Lines {
		t.Fatalf("%d rows from %d lines", len(file.Rows), file.Lines)
	}
	pairs := map[[2]string]bool{}
	unions := map[[2]string]string{}
	for _, r := range file.Rows {
		app := byID[r.AppID]
		switch {
		case app == nil:
			t.Fatalf("row %+v is in no bound app", r)
		case !models.ValidWeChatID(r.OpenID):
			t.Fatalf("row %+v has an invalid openid", r)
		case r.UnionID != "" && !models.ValidWeChatID(r.UnionID):
			t.Fatalf("row %+v has an invalid unionid", r)
		case !app.IsOfficialAccount() && r.Subscription == models.Subscribed:
			t.Fatalf("row %+v: a mini program's user follows", r)
		case !r.SubscribeTime.IsZero() && (r.SubscribeTime.Unix() < 1e9 || r.SubscribeTime.Unix() > 4e9 || r.SubscribeTime.Location() != time.UTC):
			t.Fatalf("row %+v: subscribe time out of range or not UTC", r)
		}
		k := [2]string{app.AppID, r.OpenID}
		if pairs[k] {
			t.Fatalf("row %+v appears twice", r)
		}
		pairs[k] = true
		if r.UnionID != "" {
			u := [2]string{app.AppID, r.UnionID}
			if o, ok := unions[u]; ok && o != r.OpenID {
				t.Fatalf("unionid %q names openids %q and %q of one app", r.UnionID, o, r.OpenID)
			}
			unions[u] = r.OpenID
		}
	}
	back, err := decodeImportRows(encodeImportRows(file.Rows))
	if err != nil || !reflect.DeepEqual(back, file.Rows) {
		t.Fatalf("the chunk encoding changed the rows: %v\n%+v\n%+v", err, file.Rows, back)
	}
	if !bytes.HasPrefix(data, []byte("\ufeff")) && len(data) < MaxImportBytes {
		if f2, p2 := ParseImport(append([]byte("\ufeff"), data...), apps); len(p2) > 0 || !reflect.DeepEqual(f2, file) {
			t.Fatalf("a BOM changed the result: %+v", p2)
		}
	}

	// The accepted rows written back as a file of their own.
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"appid", "openid", "unionid", "subscribed", "subscribe_time"})
	for _, r := range file.Rows {
		sub, at := "", ""
		switch r.Subscription {
		case models.Subscribed:
			sub = "1"
		case models.Unsubscribed:
			sub = "0"
		}
		if !r.SubscribeTime.IsZero() {
			at = strconv.FormatInt(r.SubscribeTime.Unix(), 10)
		}
		_ = w.Write([]string{byID[r.AppID].AppID, r.OpenID, r.UnionID, sub, at})
	}
	w.Flush()
	again, p2 := ParseImport(buf.Bytes(), apps)
	if len(p2) > 0 {
		t.Fatalf("the accepted rows, written back, are refused: %+v\n%s", p2, buf.String())
	}
	if !reflect.DeepEqual(again.Rows, file.Rows) {
		t.Fatalf("the accepted rows, written back, read differently:\n%+v\n%+v", file.Rows, again.Rows)
	}
}

// importSeeds are real-looking files: a BOM, CRLF, quotes, CJK values,
// spreadsheet times, formula-looking cells, repeats and conflicts.
var importSeeds = []string{
	"appid,openid,unionid\nwx00000000000000a1,oAbCdEfGhIjKlMnOpQrStUvWx3kQ,oUnion0000000000000000000001\n",
	"\ufeffappid,openid,unionid,subscribed,subscribe_time\r\n" +
		"wx00000000000000a1,oAbCdEfGhIjKlMnOpQrStUvWx3kQ,oUnion0000000000000000000001,是,2024-05-01 09:30:00\r\n" +
		"wx00000000000000b2,oMiniProgramOpenId0000000001,oUnion0000000000000000000001,0,1714527000\r\n" +
		"\"wx00000000000000a1\",\"oAbCdEfGhIjKlMnOpQrStUvWx3kQ\",oUnion0000000000000000000001,1,2024/5/1 9:30\r\n",
	"AppID , OpenID,UnionID,Subscribed\nwx00000000000000a1,o1111111111111111111111111111,,已取关\n",
	"appid,openid,unionid,subscribe_time\nwx00000000000000a1,o1,,2024-05-01T09:30:00.123456+08:00\n",
	"appid,openid,unionid,subscribe_time\nwx00000000000000a1,o1,,0001-01-01\nwx00000000000000a1,o2,,9999-12-31T23:59:59Z\n",
	"appid,openid,unionid\nwx00000000000000a1,=HYPERLINK(\"http://x\"),\n",
	"appid,openid,unionid\nwx00000000000000c3,o1,u1\nwx00000000000000b2,o2,u2\nwx00000000000000b2,o3,u2\n",
	"appid,openid,unionid\nwx00000000000000a1,o1,u1\nwx00000000000000a1,o1,u2\n",
	"appid,openid,unionid,subscribed\nwx00000000000000b2,o1,u1,1\n",
	"appid,openid,unionid\nwx00000000000000a1,\"o1\nx\",u1\n",
	"appid,openid,unionid\nwx00000000000000a1,\"o1,u1\n",
	"appid,openid,openid\n",
	"名字,openid\n张三,o1\n",
	"appid,openid,unionid\n",
	"  \r\n",
	"appid,openid,unionid\nwx00000000000000a1,null,\nwx00000000000000a1,o1,u1,extra\n",
	"appid;openid;unionid\nwx00000000000000a1;o1;u1\n",
	"\xff\xfea\x00p\x00",
}

func TestImportSeeds(t *testing.T) {
	for _, s := range importSeeds {
		checkImport(t, []byte(s))
	}
	// A few of them, as the page would report them.
	file, problems := ParseImport([]byte(importSeeds[1]), fuzzImportApps())
	if len(problems) != 0 || len(file.Rows) != 2 || file.Lines != 3 || file.Rows[0].Subscription != models.Subscribed {
		t.Fatalf("the BOM/CRLF/CJK file: %+v %+v", file, problems)
	}
	_, problems = ParseImport([]byte("appid,openid,unionid\nwx00000000000000c3,o1,u1\nwx00000000000000b2,o2,u2\nwx00000000000000b2,o3,u2\n"), fuzzImportApps())
	var got []string
	for _, p := range problems {
		got = append(got, strconv.Itoa(p.Row)+":"+p.Problem)
	}
	if strings.Join(got, " ") != "2:unknown_app 4:unionid_twice" {
		t.Fatalf("problems of the unbound/unionid file: %v", got)
	}
	_, problems = ParseImport([]byte("appid,openid,unionid,subscribe_time\nwx00000000000000a1,o1,,0001-01-01\nwx00000000000000a1,o2,,9999-12-31T23:59:59Z\n"), fuzzImportApps())
	if len(problems) != 2 || problems[0].Problem != ProblemBadTime || problems[1].Problem != ProblemBadTime {
		t.Fatalf("times in year 1 and 9999: %+v", problems)
	}
}

// FuzzParseImport runs checkImport over generated files.
func FuzzParseImport(f *testing.F) {
	for _, s := range importSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkImport(t, data)
	})
}
