package ingest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"oneid/models"
)

// CSV import of identities (PRODUCT.md "Ways identities arrive"): a file of
// appid, openid, unionid and optionally subscribed and subscribe_time, with a
// header row, UTF-8 with or without a BOM. The whole file is checked before
// anything is written; a file with any problem is refused with every problem
// (row, column, what is wrong) and writes nothing.

// Import limits.
const (
	MaxImportBytes = 30 << 20 // the portal takes request bodies up to 32 MB
	MaxImportRows  = 500_000
	// maxImportProblems bounds the problems collected: past it the file is
	// surely wrong and the rest would only repeat.
	maxImportProblems = 1000
)

// Import columns.
const (
	ColAppID         = "appid"
	ColOpenID        = "openid"
	ColUnionID       = "unionid"
	ColSubscribed    = "subscribed"
	ColSubscribeTime = "subscribe_time"
)

var importColumns = map[string]bool{ColAppID: true, ColOpenID: true, ColUnionID: true, ColSubscribed: true, ColSubscribeTime: true}

// ImportProblem is one thing wrong with a file. Row is the line of the file
// as a spreadsheet numbers it (the header is row 1; 0: the file as a whole).
// Problem is a key the portal translates (views catalog "imports.problem.*"),
// Value the offending text, shortened.
type ImportProblem struct {
	Row      int
	Column   string
	Problem  string
	Value    string
	OtherRow int // for duplicates: the row it conflicts with
}

// Problems of a file, as keys.
const (
	ProblemNotUTF8       = "not_utf8"
	ProblemEmpty         = "empty"
	ProblemTooLarge      = "too_large"
	ProblemTooManyRows   = "too_many_rows"
	ProblemBadCSV        = "bad_csv"
	ProblemUnknownColumn = "unknown_column"
	ProblemDuplicateCol  = "duplicate_column"
	ProblemMissingColumn = "missing_column"
	ProblemFieldCount    = "field_count"
	ProblemRequired      = "required"
	ProblemUnknownApp    = "unknown_app"
	ProblemBadID         = "bad_id"
	ProblemBadSubscribed = "bad_subscribed"
	ProblemBadTime       = "bad_time"
	ProblemNotFollowable = "not_followable"
	ProblemConflict      = "conflicting_unionid"
	ProblemUnionIDTwice  = "unionid_twice"
	ProblemNoRows        = "no_rows"
)

// ImportRow is one validated row.
type ImportRow struct {
	AppID         int64 // apps.id
	OpenID        string
	UnionID       string
	Subscription  models.Subscription
	SubscribeTime time.Time
}

// ImportFile is a validated file: its rows (repeated rows dropped) and how
// many lines it had.
type ImportFile struct {
	Rows  []ImportRow
	Lines int // data rows read, repeats included
}

// ParseImport checks a file against the tenant's bound apps. It returns the
// rows, or every problem found (up to a thousand).
func ParseImport(data []byte, apps []models.App) (*ImportFile, []ImportProblem) {
	if len(data) > MaxImportBytes {
		return nil, []ImportProblem{{Problem: ProblemTooLarge}}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		return nil, []ImportProblem{{Problem: ProblemNotUTF8}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, []ImportProblem{{Problem: ProblemEmpty}}
	}
	byAppID := map[string]*models.App{}
	for i := range apps {
		if apps[i].IsBound() {
			byAppID[apps[i].AppID] = &apps[i]
		}
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	var problems []ImportProblem
	add := func(p ImportProblem) bool {
		p.Value = shorten(p.Value)
		problems = append(problems, p)
		return len(problems) < maxImportProblems
	}

	header, err := r.Read()
	if err != nil {
		return nil, []ImportProblem{{Row: 1, Problem: ProblemBadCSV, Value: csvError(err)}}
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case !importColumns[name]:
			add(ImportProblem{Row: 1, Column: h, Problem: ProblemUnknownColumn, Value: h})
		case col[name] != 0:
			add(ImportProblem{Row: 1, Column: name, Problem: ProblemDuplicateCol, Value: h})
		default:
			col[name] = i + 1 // 1-based so 0 means absent
		}
	}
	for _, need := range []string{ColAppID, ColOpenID, ColUnionID} {
		if col[need] == 0 {
			add(ImportProblem{Row: 1, Column: need, Problem: ProblemMissingColumn})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	field := func(rec []string, name string) string {
		if i := col[name]; i > 0 && i <= len(rec) {
			return strings.TrimSpace(rec[i-1])
		}
		return ""
	}

	type seenID struct {
		row     int
		unionID string
	}
	seen := map[[2]string]seenID{}      // (appid, openid)
	unionOf := map[[2]string]seenID{}   // (appid, unionid) → the openid's row
	unionOpen := map[[2]string]string{} // (appid, unionid) → openid
	out := &ImportFile{}
	line := 1
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			add(ImportProblem{Row: line, Problem: ProblemBadCSV, Value: csvError(err)})
			return nil, problems // the reader cannot go on past a broken quote
		}
		if l, _ := r.FieldPos(0); l > 0 {
			line = l
		}
		out.Lines++
		if out.Lines > MaxImportRows {
			return nil, append(problems, ImportProblem{Problem: ProblemTooManyRows})
		}
		if len(rec) != len(header) {
			if !add(ImportProblem{Row: line, Problem: ProblemFieldCount, Value: strconv.Itoa(len(rec))}) {
				break
			}
			continue
		}
		ok := true
		bad := func(p ImportProblem) {
			ok = false
			p.Row = line
			add(p)
		}
		appid, openID, unionID := field(rec, ColAppID), field(rec, ColOpenID), field(rec, ColUnionID)
		app := byAppID[appid]
		switch {
		case appid == "":
			bad(ImportProblem{Column: ColAppID, Problem: ProblemRequired})
		case app == nil:
			bad(ImportProblem{Column: ColAppID, Problem: ProblemUnknownApp, Value: appid})
		}
		switch {
		case openID == "":
			bad(ImportProblem{Column: ColOpenID, Problem: ProblemRequired})
		case !models.ValidWeChatID(openID):
			bad(ImportProblem{Column: ColOpenID, Problem: ProblemBadID, Value: openID})
		}
		if unionID != "" && !models.ValidWeChatID(unionID) {
			bad(ImportProblem{Column: ColUnionID, Problem: ProblemBadID, Value: unionID})
		}
		row := ImportRow{OpenID: openID, UnionID: unionID}
		if v := field(rec, ColSubscribed); v != "" {
			sub, valid := parseSubscribed(v)
			switch {
			case !valid:
				bad(ImportProblem{Column: ColSubscribed, Problem: ProblemBadSubscribed, Value: v})
			case app != nil && !app.IsOfficialAccount() && sub == models.Subscribed:
				bad(ImportProblem{Column: ColSubscribed, Problem: ProblemNotFollowable, Value: v})
			default:
				row.Subscription = sub
			}
		}
		if v := field(rec, ColSubscribeTime); v != "" {
			at, valid := parseImportTime(v)
			if !valid {
				bad(ImportProblem{Column: ColSubscribeTime, Problem: ProblemBadTime, Value: v})
			} else {
				row.SubscribeTime = at
			}
		}
		if ok {
			key := [2]string{appid, openID}
			if prev, dup := seen[key]; dup {
				if prev.unionID != unionID && prev.unionID != "" && unionID != "" {
					bad(ImportProblem{Column: ColUnionID, Problem: ProblemConflict, Value: unionID, OtherRow: prev.row})
				}
			} else if unionID != "" {
				ukey := [2]string{appid, unionID}
				if prev, twice := unionOf[ukey]; twice && unionOpen[ukey] != openID {
					bad(ImportProblem{Column: ColUnionID, Problem: ProblemUnionIDTwice, Value: unionID, OtherRow: prev.row})
				} else {
					unionOf[ukey], unionOpen[ukey] = seenID{row: line}, openID
				}
			}
			if ok {
				if _, dup := seen[key]; !dup {
					seen[key] = seenID{row: line, unionID: unionID}
					row.AppID = app.ID
					out.Rows = append(out.Rows, row)
				}
			}
		}
		if len(problems) >= maxImportProblems {
			break
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if out.Lines == 0 {
		return nil, []ImportProblem{{Problem: ProblemNoRows}}
	}
	return out, nil
}

func parseSubscribed(v string) (models.Subscription, bool) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "y", "是", "已关注":
		return models.Subscribed, true
	case "0", "false", "no", "n", "否", "未关注", "已取关":
		return models.Unsubscribed, true
	}
	return models.SubscriptionUnknown, false
}

// parseImportTime reads unix seconds (as user/info gives subscribe_time),
// RFC 3339, or a date and time as spreadsheets write them (China time).
// Times are whole seconds, as WeChat gives them: a fraction is dropped, so a
// small import (written at once) and a large one (through the job's chunks,
// which carry seconds) store the same time. Whichever way it is written, a
// time must fall between 2001-09-09 and 2096-10-02 (unix 1e9 to 4e9): year 1
// or 9999 is a spreadsheet's mistake, not a follow (both found by
// FuzzParseImport).
func parseImportTime(v string) (time.Time, bool) {
	inRange := func(t time.Time) (time.Time, bool) {
		if n := t.Unix(); n < 1_000_000_000 || n > 4_000_000_000 {
			return time.Time{}, false
		}
		return t.UTC().Truncate(time.Second), true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return inRange(time.Unix(n, 0))
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return inRange(t)
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04", "2006-01-02", "2006/1/2"} {
		if t, err := time.ParseInLocation(layout, v, models.BrowseZone); err == nil {
			return inRange(t)
		}
	}
	return time.Time{}, false
}

func shorten(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

func csvError(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// observations turns validated rows into what Resolve takes.
func importObservations(rows []ImportRow, at time.Time) []models.Observation {
	obs := make([]models.Observation, len(rows))
	for i, r := range rows {
		obs[i] = models.Observation{AppID: r.AppID, OpenID: r.OpenID, UnionID: r.UnionID, Subscription: r.Subscription,
			SubscribeTime: r.SubscribeTime, Source: models.SourceImport, At: at}
	}
	return obs
}

// encodeImportRows packs rows for an import_chunks row: one line each,
// "app\topenid\tunionid\tsubscription\tsubscribe_unix" (ids hold no
// whitespace, so tabs and newlines cannot occur inside a field).
func encodeImportRows(rows []ImportRow) []byte {
	var b bytes.Buffer
	for _, r := range rows {
		b.WriteString(strconv.FormatInt(r.AppID, 10))
		b.WriteByte('\t')
		b.WriteString(r.OpenID)
		b.WriteByte('\t')
		b.WriteString(r.UnionID)
		b.WriteByte('\t')
		b.WriteString(strconv.Itoa(int(r.Subscription)))
		b.WriteByte('\t')
		if !r.SubscribeTime.IsZero() {
			b.WriteString(strconv.FormatInt(r.SubscribeTime.Unix(), 10))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func decodeImportRows(data []byte) ([]ImportRow, error) {
	var rows []ImportRow
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		f := strings.Split(string(line), "\t")
		if len(f) != 5 {
			return nil, errors.New("ingest: import chunk is damaged")
		}
		app, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, errors.New("ingest: import chunk is damaged")
		}
		sub, _ := strconv.Atoi(f[3])
		r := ImportRow{AppID: app, OpenID: f[1], UnionID: f[2], Subscription: models.Subscription(sub)}
		if f[4] != "" {
			n, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return nil, errors.New("ingest: import chunk is damaged")
			}
			r.SubscribeTime = time.Unix(n, 0).UTC()
		}
		rows = append(rows, r)
	}
	return rows, nil
}
