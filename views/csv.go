package views

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"time"

	"oneid/models"
)

// CSV exports of customers. Two encoders, one per shape, write rows as
// models.ExportCustomers reads them:
//
//	enc := NewProfileEncoder(ctx, w, apps, format)
//	enc.Encode(&row) … enc.Flush() after each batch … enc.Close()
//
// The files are RFC 4180 (CRLF line ends, cells quoted when they hold a comma,
// a quote or a line break), UTF-8 with a byte order mark unless asked not to
// (Excel and WPS then read Chinese text right), and every cell is neutralised
// against formula injection (PRODUCT.md rule 8, see neutralise).

// ExportFormat is how an export's file is written.
type ExportFormat struct {
	// BOM starts the file with the UTF-8 byte order mark.
	BOM bool
	// MachineNames writes stable column names (customer_id, openid_<appid>…)
	// and values (true, sync, RFC 3339 times) for other systems, instead of
	// the person's language.
	MachineNames bool
}

// csvBuffer is the writer's buffer: large writes of whole batches.
const csvBuffer = 64 << 10

// csvWriter writes CSV cells into a bufio.Writer. bufio keeps the first write
// error and refuses every later write, so cells return nothing and the error
// comes out of Flush.
type csvWriter struct {
	w       *bufio.Writer
	started bool // a cell of the current record has been written
	num     [40]byte
}

func newCSVWriter(w io.Writer) csvWriter {
	if bw, ok := w.(*bufio.Writer); ok && bw.Size() >= csvBuffer {
		return csvWriter{w: bw}
	}
	return csvWriter{w: bufio.NewWriterSize(w, csvBuffer)}
}

// cellClass marks the bytes that matter to a cell: 1 needs quoting, 2 may
// start a formula (after spaces), 4 starts a new line.
var cellClass = func() (t [256]byte) {
	t[','], t['"'] = 1, 1
	t['\n'], t['\r'] = 1|4, 1|2|4
	for _, c := range []byte{'=', '+', '-', '@', '\t', 0} {
		t[c] |= 2
	}
	return t
}()

// dangerous reports a line that a spreadsheet would run as a formula: after
// leading spaces, it starts with = + - @, a tab, a CR or a NUL.
func dangerous(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return i < len(line) && cellClass[line[i]]&2 != 0
}

// cell writes one cell. Every line of it (a line ends at LF or CR: some
// programs split on either) that is dangerous gets a ' in front; the cell is
// quoted, with quotes doubled, when it holds a comma, a quote or a line break.
func (c *csvWriter) cell(s []byte) {
	if c.started {
		c.w.WriteByte(',')
	}
	c.started = true
	var seen byte
	for _, b := range s {
		seen |= cellClass[b]
	}
	if seen == 0 {
		c.w.Write(s)
		return
	}
	if seen&1 == 0 {
		// One line, nothing to quote: only its start can be dangerous.
		if dangerous(s) {
			c.w.WriteByte('\'')
		}
		c.w.Write(s)
		return
	}
	c.w.WriteByte('"')
	lineStart := true
	from := 0
	for i, b := range s {
		if lineStart {
			lineStart = false
			if dangerous(s[i:]) {
				c.w.Write(s[from:i])
				c.w.WriteByte('\'')
				from = i
			}
		}
		switch b {
		case '"':
			c.w.Write(s[from : i+1])
			c.w.WriteByte('"')
			from = i + 1
		case '\n', '\r':
			lineStart = true
		}
	}
	c.w.Write(s[from:])
	c.w.WriteByte('"')
}

// text writes a cell from a string (headers, labels).
func (c *csvWriter) text(s string) { c.cell([]byte(s)) }

// int writes a number: never quoted, never dangerous (ids are positive).
func (c *csvWriter) int(n int64) {
	if c.started {
		c.w.WriteByte(',')
	}
	c.started = true
	c.w.Write(strconv.AppendInt(c.num[:0], n, 10))
}

// time writes a moment in China Standard Time: "2006-01-02 15:04:05" for
// people, RFC 3339 with the +08:00 offset for machines; empty when zero.
func (c *csvWriter) time(t time.Time, machine bool) {
	if c.started {
		c.w.WriteByte(',')
	}
	c.started = true
	if t.IsZero() {
		return
	}
	c.w.Write(appendExportTime(c.num[:0], t, machine))
}

// appendExportTime formats by hand: a million rows hold two million times.
func appendExportTime(b []byte, t time.Time, machine bool) []byte {
	t = t.In(displayZone)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	two := func(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = two(b, int(mo))
	b = append(b, '-')
	b = two(b, d)
	if machine {
		b = append(b, 'T')
	} else {
		b = append(b, ' ')
	}
	b = two(b, h)
	b = append(b, ':')
	b = two(b, mi)
	b = append(b, ':')
	b = two(b, s)
	if machine {
		b = append(b, "+08:00"...)
	}
	return b
}

// end ends the record (RFC 4180: CRLF).
func (c *csvWriter) end() {
	c.w.WriteString("\r\n")
	c.started = false
}

// csvFile is what both encoders share: the writer, the file's header and
// format, and whether it has begun (byte order mark and header written).
type csvFile struct {
	csv    csvWriter
	header []string
	format ExportFormat
	begun  bool
}

// begin writes the byte order mark, if asked for, and the header, once.
func (f *csvFile) begin() {
	if f.begun {
		return
	}
	f.begun = true
	if f.format.BOM {
		f.csv.w.WriteString("\uFEFF")
	}
	for _, h := range f.header {
		f.csv.text(h)
	}
	f.csv.end()
}

// Flush sends what is buffered on (after each batch) and reports the first
// error of any write so far.
func (f *csvFile) Flush() error {
	f.begin()
	return f.csv.w.Flush()
}

// Close ends the file: the header at least, everything flushed.
func (f *csvFile) Close() error { return f.Flush() }

// Resume continues a file whose header is written already.
func (f *csvFile) Resume() { f.begun = true }

// ProfileEncoder writes a profiles export: one line per customer with its id,
// UnionID, nickname, first and last seen, then one OpenID column per app.
type ProfileEncoder struct {
	csvFile
}

// NewProfileEncoder writes a profiles export of the given apps (the columns)
// to w, with headers in the context's language unless the format asks for
// machine names.
func NewProfileEncoder(ctx context.Context, w io.Writer, apps []models.BrowseApp, f ExportFormat) *ProfileEncoder {
	return &ProfileEncoder{csvFile{csv: newCSVWriter(w), header: ProfileHeader(ctx, apps, f), format: f}}
}

// ProfileHeader is the first line of a profiles export.
func ProfileHeader(ctx context.Context, apps []models.BrowseApp, f ExportFormat) []string {
	var h []string
	if f.MachineNames {
		h = []string{"customer_id", "unionid", "nickname", "first_seen_at", "last_seen_at"}
		for _, a := range apps {
			h = append(h, "openid_"+a.AppID)
		}
		return h
	}
	h = []string{T(ctx, "export.col.customer_id"), "UnionID", T(ctx, "export.col.nickname"),
		T(ctx, "export.col.first_seen"), T(ctx, "export.col.last_seen")}
	names := map[string]int{}
	for _, a := range apps {
		names[a.Name]++
	}
	for _, a := range apps {
		name := a.Name
		if names[name] > 1 {
			name += " (" + a.AppID + ")"
		}
		h = append(h, Tf(ctx, "export.col.app_openid", name))
	}
	return h
}

// Encode writes one customer.
func (e *ProfileEncoder) Encode(r *models.ProfileRow) {
	e.begin()
	c := &e.csv
	c.int(r.ID)
	c.cell(r.UnionID)
	c.cell(r.Nickname)
	c.time(r.FirstSeen, e.format.MachineNames)
	c.time(r.LastSeen, e.format.MachineNames)
	for _, id := range r.OpenIDs {
		c.cell(id)
	}
	c.end()
}

// IdentityEncoder writes an identities export: one line per identity with its
// customer id and UnionID, the app's name and AppID, the OpenID, whether it
// follows and since when, where it was first seen, first and last seen.
type IdentityEncoder struct {
	csvFile
	apps     []models.BrowseApp
	yes, no  []byte
	sources  map[string][]byte
	appNames [][]byte
	appIDs   [][]byte
}

// NewIdentityEncoder writes an identities export to w; apps are the export's
// (models.ExportBatch.Apps), which IdentityRow.App indexes.
func NewIdentityEncoder(ctx context.Context, w io.Writer, apps []models.BrowseApp, f ExportFormat) *IdentityEncoder {
	e := &IdentityEncoder{csvFile: csvFile{csv: newCSVWriter(w), header: IdentityHeader(ctx, f), format: f}, apps: apps,
		yes: []byte("true"), no: []byte("false"), sources: map[string][]byte{}}
	if !f.MachineNames {
		e.yes, e.no = []byte(T(ctx, "export.yes")), []byte(T(ctx, "export.no"))
		for _, s := range models.Sources() {
			e.sources[s] = []byte(sourceLabel(ctx, s))
		}
	}
	for _, a := range apps {
		e.appNames = append(e.appNames, []byte(a.Name))
		e.appIDs = append(e.appIDs, []byte(a.AppID))
	}
	return e
}

// IdentityHeader is the first line of an identities export.
func IdentityHeader(ctx context.Context, f ExportFormat) []string {
	if f.MachineNames {
		return []string{"customer_id", "unionid", "app_name", "appid", "openid", "subscribed", "subscribe_time",
			"source", "first_seen_at", "last_seen_at"}
	}
	return []string{T(ctx, "export.col.customer_id"), "UnionID", T(ctx, "export.col.app_name"), "AppID", "OpenID",
		T(ctx, "export.col.subscribed"), T(ctx, "export.col.subscribe_time"), T(ctx, "export.col.source"),
		T(ctx, "export.col.first_seen"), T(ctx, "export.col.last_seen")}
}

// Encode writes one identity.
func (e *IdentityEncoder) Encode(r *models.IdentityRow) {
	e.begin()
	c := &e.csv
	c.int(r.CustomerID)
	c.cell(r.UnionID)
	c.cell(e.appNames[r.App])
	c.cell(e.appIDs[r.App])
	c.cell(r.OpenID)
	if r.Subscribed {
		c.cell(e.yes)
	} else {
		c.cell(e.no)
	}
	c.time(r.SubscribeTime, e.format.MachineNames)
	if label, ok := e.sources[string(r.Source)]; ok {
		c.cell(label)
	} else {
		c.cell(r.Source)
	}
	c.time(r.FirstSeen, e.format.MachineNames)
	c.time(r.LastSeen, e.format.MachineNames)
	c.end()
}

// ExportEncoder is either encoder, for code that writes a batch of any shape.
type ExportEncoder interface {
	EncodeBatch(b *models.ExportBatch)
	// Resume continues a file written before: no byte order mark or header.
	Resume()
	Flush() error
	Close() error
}

// EncodeBatch writes every profile of a batch.
func (e *ProfileEncoder) EncodeBatch(b *models.ExportBatch) {
	for i := range b.Profiles {
		e.Encode(&b.Profiles[i])
	}
}

// EncodeBatch writes every identity of a batch.
func (e *IdentityEncoder) EncodeBatch(b *models.ExportBatch) {
	for i := range b.Identities {
		e.Encode(&b.Identities[i])
	}
}

// NewExportEncoder is the encoder of a shape.
func NewExportEncoder(ctx context.Context, w io.Writer, shape string, apps []models.BrowseApp, f ExportFormat) ExportEncoder {
	if shape == models.ExportIdentities {
		return NewIdentityEncoder(ctx, w, apps, f)
	}
	return NewProfileEncoder(ctx, w, apps, f)
}
