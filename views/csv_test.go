package views

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"oneid/models"
)

// encodeCells writes one record of cells with the cell encoder.
func encodeCells(cells ...string) string {
	var buf bytes.Buffer
	c := newCSVWriter(&buf)
	for _, s := range cells {
		c.cell([]byte(s))
	}
	c.end()
	if err := c.w.Flush(); err != nil {
		panic(err)
	}
	return buf.String()
}

// lines splits a cell as the encoder does: a line ends at LF or CR.
func lines(s string) []string {
	var out []string
	from := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			out = append(out, s[from:i+1])
			from = i + 1
		}
	}
	return append(out, s[from:])
}

// ruleEight is PRODUCT.md rule 8 written out on its own, to check the encoder
// against: after trimming spaces, a line starting with = + - @, tab, CR or NUL.
func ruleEight(line string) bool {
	t := strings.TrimLeft(line, " ")
	return t != "" && strings.ContainsRune("=+-@\t\r\x00", rune(t[0]))
}

// checkCell parses an encoded record back and checks one cell against its
// input: every line that rule 8 calls dangerous has gained exactly a ' in
// front, every other line is unchanged, and no line of the output starts
// with a dangerous character.
func checkCell(t *testing.T, in string) {
	t.Helper()
	out := encodeCells("before", in, "after")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = 3
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv cannot read %q (from %q): %v", out, in, err)
	}
	if len(recs) != 1 || recs[0][0] != "before" || recs[0][2] != "after" {
		t.Fatalf("%q read back as %q", in, recs)
	}
	got := recs[0][1]
	var want strings.Builder
	for _, line := range lines(in) {
		if ruleEight(line) {
			want.WriteString("'")
		}
		want.WriteString(line)
	}
	// encoding/csv reads CRLF inside a quoted field as LF.
	if w := strings.ReplaceAll(want.String(), "\r\n", "\n"); got != w {
		t.Errorf("%q came back as %q, want %q: a ' before each dangerous line and nothing else", in, got, w)
	}
	for i, line := range lines(got) {
		if ruleEight(line) {
			t.Errorf("%q: line %d of the output %q still starts a formula", in, i, line)
		}
	}
}

func TestCellsAreQuotedAndNeutralised(t *testing.T) {
	cases := map[string]string{
		"plain":                   "plain",
		"":                        "",
		"王小明":                     "王小明",
		"a,b":                     `"a,b"`,
		`say "hi"`:                `"say ""hi"""`,
		"=1+1":                    "'=1+1",
		"+86 138":                 "'+86 138",
		"-2":                      "'-2",
		"@SUM(A1)":                "'@SUM(A1)",
		"\tx":                     "'\tx",
		"\x00x":                   "'\x00x",
		"  =cmd":                  "'  =cmd",
		"a-b=c":                   "a-b=c",
		"=HYPERLINK(\"x\",\"y\")": `"'=HYPERLINK(""x"",""y"")"`,
		"ok\n=evil":               "\"ok\n'=evil\"",
		"ok\r\n  @evil":           "\"ok\r\n'  @evil\"",
		"\r=x":                    "\"'\r'=x\"",
		"line\n":                  "\"line\n\"",
		"-\n-":                    "\"'-\n'-\"",
	}
	for in, want := range cases {
		if got := strings.TrimSuffix(encodeCells(in), "\r\n"); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
		checkCell(t, in)
	}
}

// FuzzCell: whatever a cell holds, the record reads back with encoding/csv,
// no line of the cell starts a formula, and taking the ' off the dangerous
// lines gives the input back.
func FuzzCell(f *testing.F) {
	for _, s := range []string{"", "=1", " -1", "a\nb", "\"", "a,\"b\"\r\n+c", "\r", "\n\n=", "@\t", "'=x", "王\n@小明", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !utf8.ValidString(in) {
			t.Skip("the database holds UTF-8 only (utf8mb4)")
		}
		checkCell(t, in)
	})
}

func TestProfileEncoder(t *testing.T) {
	bit := 0
	apps := []models.BrowseApp{{ID: 1, Name: "品牌服务号", AppID: "wx1", Bit: &bit}, {ID: 2, Name: "商城", AppID: "wx2"}, {ID: 3, Name: "商城", AppID: "wx3"}}
	at := time.Date(2025, 3, 1, 16, 30, 5, 0, time.UTC)
	rows := []models.ProfileRow{
		{ID: 7, UnionID: []byte("oUnion1"), Nickname: []byte("=王"), FirstSeen: at, LastSeen: at.Add(time.Hour),
			OpenIDs: [][]byte{[]byte("oA"), nil, []byte("-oC")}},
		{ID: 8, Nickname: []byte{}, FirstSeen: at, LastSeen: at, OpenIDs: [][]byte{nil, []byte("oB"), nil}},
	}
	encode := func(ctx context.Context, f ExportFormat) string {
		var buf bytes.Buffer
		e := NewProfileEncoder(ctx, &buf, apps, f)
		for i := range rows {
			e.Encode(&rows[i])
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	got := encode(context.Background(), ExportFormat{BOM: true})
	want := "\uFEFF客户ID,UnionID,昵称,首次出现（北京时间）,最近出现（北京时间）,品牌服务号 OpenID,商城 (wx2) OpenID,商城 (wx3) OpenID\r\n" +
		"7,oUnion1,'=王,2025-03-02 00:30:05,2025-03-02 01:30:05,oA,,'-oC\r\n" +
		"8,,,2025-03-02 00:30:05,2025-03-02 00:30:05,,oB,\r\n"
	if got != want {
		t.Errorf("profiles:\n%q\nwant\n%q", got, want)
	}
	got = encode(WithLocale(context.Background(), En), ExportFormat{MachineNames: true})
	want = "customer_id,unionid,nickname,first_seen_at,last_seen_at,openid_wx1,openid_wx2,openid_wx3\r\n" +
		"7,oUnion1,'=王,2025-03-02T00:30:05+08:00,2025-03-02T01:30:05+08:00,oA,,'-oC\r\n" +
		"8,,,2025-03-02T00:30:05+08:00,2025-03-02T00:30:05+08:00,,oB,\r\n"
	if got != want {
		t.Errorf("machine names:\n%q\nwant\n%q", got, want)
	}
	// An empty export is its header.
	var buf bytes.Buffer
	if err := NewProfileEncoder(WithLocale(context.Background(), En), &buf, nil, ExportFormat{}).Close(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "Customer ID,UnionID,Nickname,First seen (UTC+8),Last seen (UTC+8)\r\n" {
		t.Errorf("empty export: %q", buf.String())
	}
}

func TestIdentityEncoder(t *testing.T) {
	apps := []models.BrowseApp{{ID: 1, Name: "品牌服务号", AppID: "wx1"}}
	at := time.Date(2025, 3, 1, 16, 30, 5, 0, time.UTC)
	rows := []models.IdentityRow{
		{CustomerID: 7, UnionID: []byte("oU"), App: 0, OpenID: []byte("oA"), Subscribed: true, SubscribeTime: at,
			Source: []byte(models.SourceSync), FirstSeen: at, LastSeen: at},
		{CustomerID: 8, App: 0, OpenID: []byte("oB"), Source: []byte("other"), FirstSeen: at, LastSeen: at},
	}
	var buf bytes.Buffer
	e := NewIdentityEncoder(context.Background(), &buf, apps, ExportFormat{})
	for i := range rows {
		e.Encode(&rows[i])
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	want := "客户ID,UnionID,应用名称,AppID,OpenID,是否关注,关注时间（北京时间）,来源,首次出现（北京时间）,最近出现（北京时间）\r\n" +
		"7,oU,品牌服务号,wx1,oA,是,2025-03-02 00:30:05,粉丝同步,2025-03-02 00:30:05,2025-03-02 00:30:05\r\n" +
		"8,,品牌服务号,wx1,oB,否,,other,2025-03-02 00:30:05,2025-03-02 00:30:05\r\n"
	if buf.String() != want {
		t.Errorf("identities:\n%q\nwant\n%q", buf.String(), want)
	}
}

// TestResumedExport: a resumed file of either shape goes on with rows, no
// byte order mark and no header, even when it gets none.
func TestResumedExport(t *testing.T) {
	apps := []models.BrowseApp{{ID: 1, Name: "品牌服务号", AppID: "wx1"}}
	at := time.Date(2025, 3, 1, 16, 30, 5, 0, time.UTC)
	batch := &models.ExportBatch{
		Profiles:   []models.ProfileRow{{ID: 7, FirstSeen: at, LastSeen: at, OpenIDs: [][]byte{[]byte("oA")}}},
		Identities: []models.IdentityRow{{CustomerID: 7, OpenID: []byte("oA"), Source: []byte("other"), FirstSeen: at, LastSeen: at}},
	}
	f := ExportFormat{BOM: true, MachineNames: true}
	for shape, want := range map[string]string{
		models.ExportProfiles:   "7,,,2025-03-02T00:30:05+08:00,2025-03-02T00:30:05+08:00,oA\r\n",
		models.ExportIdentities: "7,,品牌服务号,wx1,oA,false,,other,2025-03-02T00:30:05+08:00,2025-03-02T00:30:05+08:00\r\n",
	} {
		var buf bytes.Buffer
		e := NewExportEncoder(context.Background(), &buf, shape, apps, f)
		e.Resume()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: a resumed file with no rows got %q", shape, buf.String())
		}
		e.EncodeBatch(batch)
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("%s resumed:\n%q\nwant\n%q", shape, buf.String(), want)
		}
	}
}

func BenchmarkProfileEncoder(b *testing.B) {
	apps := make([]models.BrowseApp, 6)
	row := models.ProfileRow{ID: 1234567, UnionID: []byte("oAbCdEfGhIjKlMnOpQrStUvWxYz0"), Nickname: []byte("Lucky王小明"),
		FirstSeen: time.Now(), LastSeen: time.Now(), OpenIDs: make([][]byte, 6)}
	for i := range 3 {
		row.OpenIDs[i] = []byte("oAbCdEfGhIjKlMnOpQrStUvWxYz" + string(rune('0'+i)))
	}
	var buf bytes.Buffer
	e := NewProfileEncoder(context.Background(), &buf, apps, ExportFormat{BOM: true})
	b.ReportAllocs()
	for b.Loop() {
		e.Encode(&row)
		if buf.Len() > 1<<20 {
			buf.Reset()
		}
	}
}
