package models

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// BrowseApp is one of the tenant's apps as the customer screens name it.
type BrowseApp struct {
	ID     int64
	Name   string
	Kind   string
	Status string
	AppID  string `gorm:"column:appid"`
	Bit    *int   `gorm:"column:mask_bit"` // its bit in the customer masks, if it has one
}

// BrowseApps lists the tenant's apps (unbound ones too: their identities stay),
// in the order they were added.
func BrowseApps(db *gorm.DB, tenantID int64) ([]BrowseApp, error) {
	var apps []BrowseApp
	err := db.Model(&App{}).Scopes(ForTenant(tenantID)).Select("id", "name", "kind", "status", "appid", "mask_bit").
		Order("id").Find(&apps).Error
	if err != nil {
		return nil, fmt.Errorf("models: list apps: %w", err)
	}
	return apps, nil
}

// CustomerRow is one line of the customer list.
type CustomerRow struct {
	ID             int64
	UnionID        *string `gorm:"column:unionid"`
	UnlinkedReason *string
	Nickname       string
	FirstSeenAt    time.Time
	LastSeenAt     time.Time
	AppMask        int64
	SubMask        int64
	// MatchedOpenID is the OpenID the search found the customer by, if any.
	MatchedOpenID string `gorm:"-"`
}

// Cursor is the row's position in the filter's order.
func (r CustomerRow) cursor(f CustomerFilter) Cursor {
	if f.sortColumn() == "first_seen_at" {
		return Cursor{At: r.FirstSeenAt, ID: r.ID}
	}
	return Cursor{At: r.LastSeenAt, ID: r.ID}
}

// Total is how many customers match a filter: exact when counting is cheap,
// else estimated from the tenant's list stats (as of AsOf), or, without
// stats, at least N.
type Total struct {
	N       int64
	Exact   bool
	AtLeast bool      // N is a lower bound: more match
	AsOf    time.Time // when the stats an estimate comes from were taken
}

// CustomerPage is one page of the list.
type CustomerPage struct {
	Rows []CustomerRow
	// Next and Prev are the filters of the neighbouring pages; nil at an end.
	Next, Prev *CustomerFilter
	Total      Total
}

// Tuning of the list.
const (
	// countCap: up to this many matches are counted exactly (cheap: the walk
	// stops there); beyond, the total is estimated.
	countCap = 1000
	// clearlyMany: when the stats expect this many times countCap, the count
	// is not even tried.
	clearlyMany = 5
	// nicknameIndex serves nickname prefixes.
	nicknameIndex = "ix_customers_tenant_nickname"
	// nicknameEstimateSlack: MySQL's estimate of a nickname prefix's matches
	// (an index dive) runs up to about twice the count; only a prefix
	// estimated below this many times nicknameIndexMax is counted to choose
	// the plan.
	nicknameEstimateSlack = 4
	// sparseSourceShare: a source held by at most this share of the tenant's
	// customers is served from the source indexes (planSource) instead of
	// walking the sort order for it.
	sparseSourceShare = 0.05
	// maxSourceBranches bounds the source plan's union: one branch per
	// combination of sources the tenant's customers hold, then one for the
	// rest.
	maxSourceBranches = 8
)

// ListOptions size a page of the list and say how to count.
type ListOptions struct {
	Limit int // rows per page; 50 when zero
	// Stats, when known (LoadListStats), let the count estimate large totals
	// instead of counting them.
	Stats *ListStats
	// CountCap overrides how many matches are counted exactly (tests use a
	// small one); zero is the default, 1,000.
	CountCap int
}

// ListCustomers returns one page of the tenant's customers matching the filter,
// in its order, paged by keyset (the cursor in the filter): each page costs the
// same however deep it is. apps are the tenant's (BrowseApps).
func ListCustomers(db *gorm.DB, tenantID int64, f CustomerFilter, apps []BrowseApp, opt ListOptions) (CustomerPage, error) {
	if tenantID <= 0 {
		return CustomerPage{}, fmt.Errorf("%w: list customers of tenant %d", ErrUnscopedQuery, tenantID)
	}
	limit := opt.Limit
	if limit <= 0 {
		limit = 50
	}
	q, err := planList(db, tenantID, f, apps)
	if err != nil {
		return CustomerPage{}, err
	}
	q.stats, q.apps = opt.Stats, apps
	if opt.CountCap > 0 {
		q.countCap = opt.CountCap
	}
	q.planSource()
	q.planPrefix(limit)
	page := CustomerPage{}
	if q.none {
		page.Total = Total{Exact: true}
		return page, nil
	}
	rows, err := q.page(limit)
	if err != nil {
		return page, err
	}
	backward := f.Before != nil
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if backward {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	for i := range rows {
		rows[i].MatchedOpenID = q.matchedOpenID[rows[i].ID]
	}
	page.Rows = rows
	if len(rows) > 0 {
		first, last := rows[0].cursor(f), rows[len(rows)-1].cursor(f)
		if (backward && more) || (!backward && (f.After != nil)) {
			p := f.FirstPage()
			p.Before = &first
			page.Prev = &p
		}
		if (!backward && more) || backward {
			n := f.FirstPage()
			n.After = &last
			page.Next = &n
		}
	}
	page.Total, err = q.count()
	return page, err
}

// listQuery is a planned list query: the conditions, split into those the
// index walks (the range) and those it tests (the rest), and the index to use.
type listQuery struct {
	db       *gorm.DB
	tenantID int64
	f        CustomerFilter
	mysql    bool
	none     bool // the filter can match nothing: no query needed

	index    string   // MySQL index hint, "" for none
	idSet    []int64  // the search found these customers by id
	rangeSQL []string // on the sort column: what the index walks
	rangeArg []any
	testSQL  []string // everything else, tested per index entry
	testArg  []any
	exact    bool // the rows the conditions reach are few: count them all
	// exactN is the count when planning has it already (a nickname prefix
	// that is the filter's only condition, counted by planSearch).
	exactN   *int64
	countCap int
	stats    *ListStats
	apps     []BrowseApp
	prefix   string // the nickname prefix searched (LIKE pattern), if any
	// prefixRows is MySQL's estimate of the prefix's matches on the nickname
	// index, once read (-1 before).
	prefixRows int64
	// sourceBit is the source filter's bit (0 for none); sources, when the
	// source plan is chosen, are the src_mask values its union reads one
	// branch each (planSource).
	sourceBit int64
	sources   []int64
	// maskTests: the filter tests the masks or the namespace (app, kind,
	// following, linked, source), which only the rows and the last-seen
	// index hold.
	maskTests bool

	matchedOpenID map[int64]string
}

func planList(db *gorm.DB, tenantID int64, f CustomerFilter, apps []BrowseApp) (*listQuery, error) {
	q := &listQuery{db: db, tenantID: tenantID, f: f, mysql: Dialect(db) == DialectMySQL, countCap: countCap, prefixRows: -1}
	col := f.sortColumn()
	q.index = "ix_customers_browse_" + strings.TrimSuffix(col, "_at")

	// Date bounds: on the sort column they narrow the walk, on the other one
	// they are tested in the index.
	bound := func(c string, from, to Day) {
		add := func(sql string, arg any) {
			if c == col {
				q.rangeSQL, q.rangeArg = append(q.rangeSQL, sql), append(q.rangeArg, arg)
			} else {
				q.testSQL, q.testArg = append(q.testSQL, sql), append(q.testArg, arg)
			}
		}
		if !from.IsZero() {
			add(c+" >= ?", from.Start())
		}
		if !to.IsZero() {
			add(c+" < ?", to.End())
		}
	}
	bound("first_seen_at", f.FirstFrom, f.FirstTo)
	bound("last_seen_at", f.LastFrom, f.LastTo)

	// Apps in view: one app, a kind, or all.
	var inView []BrowseApp
	for _, a := range apps {
		if (f.AppID == 0 || a.ID == f.AppID) && (f.Kind == "" || a.Kind == f.Kind) {
			inView = append(inView, a)
		}
	}
	narrowedToApps := f.AppID != 0 || f.Kind != ""
	if narrowedToApps && len(inView) == 0 {
		q.none = true
		return q, nil
	}
	var viewMask int64
	allMasked := true
	var viewIDs []int64
	for _, a := range inView {
		viewIDs = append(viewIDs, a.ID)
		if a.Bit != nil && *a.Bit >= 0 && *a.Bit < MaxMaskedApps {
			viewMask |= 1 << *a.Bit
		} else {
			allMasked = false
		}
	}
	test := func(sql string, args ...any) {
		q.testSQL, q.testArg = append(q.testSQL, sql), append(q.testArg, args...)
	}
	// An app beyond the 63 with bits is looked up in identities (rare: a
	// tenant with that many apps).
	hasIdentity := func(subscribed bool) string {
		s := "EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = customers.tenant_id AND i.customer_id = customers.id AND i.app_id IN ?"
		if subscribed {
			s += " AND i.subscribed = ?"
		}
		return s + ")"
	}
	if narrowedToApps {
		if allMasked {
			test("(app_mask & ?) <> 0", viewMask)
		} else {
			test(hasIdentity(false), viewIDs)
		}
	}
	switch {
	case f.Subscribed != "" && allMasked:
		op := "<>"
		if f.Subscribed == "no" {
			op = "="
		}
		test("(sub_mask & ?) "+op+" 0", viewMask)
	case f.Subscribed != "":
		not := ""
		if f.Subscribed == "no" {
			not = "NOT "
		}
		test(not+hasIdentity(true), viewIDs, true)
	}
	switch f.Linked {
	case "yes":
		test("open_account_id IS NOT NULL")
	case "no":
		test("open_account_id IS NULL")
	}
	// The source's condition is added by where: its form depends on the
	// plan (planSource).
	q.sourceBit = sourceBits[f.Source]
	q.maskTests = narrowedToApps || f.Subscribed != "" || f.Linked != "" || q.sourceBit != 0

	if f.Query != "" {
		if err := q.planSearch(f.Query); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// planSearch: an id finds its customers exactly; anything else (or an id
// nobody has) is a nickname prefix.
func (q *listQuery) planSearch(s string) error {
	if idLike.MatchString(s) {
		ids, matched, err := customersByWeChatID(q.db, q.tenantID, s)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			q.idSet, q.matchedOpenID, q.index, q.exact = ids, matched, "", true
			return nil
		}
	}
	prefix := escapeLike(s) + "%"
	q.prefix = prefix
	q.testSQL, q.testArg = append(q.testSQL, "nickname LIKE ? ESCAPE '!'"), append(q.testArg, prefix)
	if q.mysql {
		// A common prefix (a surname) is estimated well above the bound: no
		// count; the estimate chooses the plan (planPrefix) and serves the
		// total.
		est, err := q.explainRows(nicknameIndex, "tenant_id = ? AND nickname LIKE ? ESCAPE '!'", []any{q.tenantID, prefix})
		if err != nil {
			return err
		}
		q.prefixRows = est
		if est > nicknameEstimateSlack*nicknameIndexMax {
			return nil
		}
	}
	var n int64
	err := q.db.Raw("SELECT COUNT(*) FROM (SELECT 1 FROM customers"+q.hint(nicknameIndex)+
		" WHERE tenant_id = ? AND nickname LIKE ? ESCAPE '!' LIMIT ?) t", q.tenantID, prefix, nicknameIndexMax+1).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("models: count nickname prefix: %w", err)
	}
	if n == 0 {
		q.none = true
	} else if n <= nicknameIndexMax {
		q.index, q.exact = nicknameIndex, true
		if len(q.testSQL) == 1 && len(q.rangeSQL) == 0 && q.sourceBit == 0 {
			q.exactN = &n
		}
	}
	return nil
}

// customersByWeChatID finds the customers holding s as their UnionID (in any of
// the tenant's namespaces) or as the OpenID of one of their identities.
func customersByWeChatID(db *gorm.DB, tenantID int64, s string) ([]int64, map[int64]string, error) {
	var byUnion []int64
	err := db.Raw(`SELECT id FROM customers WHERE tenant_id = ? AND unionid = ?
AND open_account_id IN (SELECT id FROM open_accounts WHERE tenant_id = ?)`, tenantID, s, tenantID).Scan(&byUnion).Error
	if err != nil {
		return nil, nil, fmt.Errorf("models: find customers by unionid: %w", err)
	}
	var byOpen []int64
	err = db.Raw(`SELECT customer_id FROM identities WHERE tenant_id = ? AND openid = ?
AND app_id IN (SELECT id FROM apps WHERE tenant_id = ?)`, tenantID, s, tenantID).Scan(&byOpen).Error
	if err != nil {
		return nil, nil, fmt.Errorf("models: find customers by openid: %w", err)
	}
	matched := map[int64]string{}
	for _, id := range byOpen {
		matched[id] = s
	}
	return uniqueSorted(append(byUnion, byOpen...)), matched, nil
}

// escapeLike makes s match itself in LIKE … ESCAPE '!'.
func escapeLike(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}

// hint is MySQL's FORCE INDEX: the planner does not know that a walk in order
// stops after a page, and would rather sort a million rows.
func (q *listQuery) hint(index string) string {
	if !q.mysql || index == "" {
		return ""
	}
	return " FORCE INDEX (" + index + ")"
}

// where is the condition list: tenant, id set, range, tests, and extra.
func (q *listQuery) where(withRange bool, extra []string, extraArgs []any) (string, []any) {
	conds := []string{"tenant_id = ?"}
	args := []any{q.tenantID}
	if q.idSet != nil {
		conds, args = append(conds, "id IN ?"), append(args, q.idSet)
	}
	if withRange {
		conds, args = append(conds, q.rangeSQL...), append(args, q.rangeArg...)
	}
	conds, args = append(conds, q.testSQL...), append(args, q.testArg...)
	switch {
	case q.sourceBit == 0:
	case q.sources != nil:
		// The same customers, as points the source index can seek.
		conds, args = append(conds, "src_mask IN ?"), append(args, sourceValues(q.sourceBit))
	default:
		conds, args = append(conds, "(src_mask & ?) <> 0"), append(args, q.sourceBit)
	}
	conds, args = append(conds, extra...), append(args, extraArgs...)
	return strings.Join(conds, " AND "), args
}

// page reads up to limit+1 rows from the cursor on, in walk order (reversed
// for a previous page).
func (q *listQuery) page(limit int) ([]CustomerRow, error) {
	col := q.f.sortColumn()
	desc := q.f.descending()
	var extra []string
	var extraArgs []any
	cursor := q.f.After
	if q.f.Before != nil {
		cursor, desc = q.f.Before, !desc
	}
	if cursor != nil {
		op := ">"
		if desc {
			op = "<"
		}
		extra = append(extra, fmt.Sprintf("(%s %s ? OR (%s = ? AND id %s ?))", col, op, col, op))
		extraArgs = append(extraArgs, cursor.At, cursor.At, cursor.ID)
	}
	dir := "ASC"
	if desc {
		dir = "DESC"
	}
	order := fmt.Sprintf("%s %s, id %s", col, dir, dir)
	// The inner query reads ids from an index alone; only the page's rows are
	// then fetched.
	var inner string
	var args []any
	if q.sources == nil {
		where, wargs := q.where(true, extra, extraArgs)
		inner = "SELECT id FROM customers" + q.hint(q.index) + " WHERE " + where + " ORDER BY " + order + " LIMIT ?"
		args = append(wargs, limit+1)
	} else {
		inner, args = q.sourceUnion(col, order, extra, extraArgs, limit+1)
	}
	sql := "SELECT c.id, c.unionid, c.unlinked_reason, c.nickname, c.first_seen_at, c.last_seen_at, c.app_mask, c.sub_mask" +
		" FROM (" + inner + ") k" +
		" JOIN customers c ON c.id = k.id WHERE c.tenant_id = ? ORDER BY c." + col + " " + dir + ", c.id " + dir
	args = append(args, q.tenantID)
	// Scanned by hand: gorm's reflection over the row struct cost as much
	// CPU as the query.
	res, err := q.db.Raw(sql, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("models: list customers: %w", err)
	}
	defer res.Close()
	rows := make([]CustomerRow, 0, limit+1)
	for res.Next() {
		rows = append(rows, CustomerRow{})
		r := &rows[len(rows)-1] // scanned in place: a row of its own would escape
		if err := res.Scan(&r.ID, &r.UnionID, &r.UnlinkedReason, &r.Nickname, &r.FirstSeenAt, &r.LastSeenAt, &r.AppMask, &r.SubMask); err != nil {
			return nil, fmt.Errorf("models: list customers: %w", err)
		}
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("models: list customers: %w", err)
	}
	return rows, nil
}

// The source plan. A source few customers hold (OAuth, the mini-program,
// an import: often a percent or less) is spread thinly through the sort
// order, so walking it for a page tests thousands of entries (a source held
// by 0.9% of a million customers: about 5,500 entries, 1.3 ms of database
// time a page, the costliest of the typical views). The source indexes
// order customers by (src_mask, sort column): for one src_mask value, a
// page is the next entries of one range. A source is a bit of src_mask, so
// its customers are those of every value holding the bit; the tenant holds
// few such values (those the stats list), so the page is a union of one
// range per value the stats list, each read to a page, and one more over
// the values they do not list (values that appeared since, normally none:
// its points are seeks that find nothing), merged and cut to a page. The
// stats choose the plan and the branches, never the answer: the union
// covers every value holding the bit.
func (q *listQuery) planSource() {
	if q.sourceBit == 0 || q.none || q.idSet != nil || q.prefix != "" || q.stats == nil || q.stats.Total == 0 {
		return
	}
	index, ok := sourceIndexes[q.f.sortColumn()]
	if !ok {
		return
	}
	var held int64
	var values []int64
	for _, g := range q.stats.Groups {
		if g.SrcMask&q.sourceBit != 0 {
			held += g.N
			if !slices.Contains(values, g.SrcMask) {
				values = append(values, g.SrcMask)
			}
		}
	}
	if float64(held) > sparseSourceShare*float64(q.stats.Total) || len(values) >= maxSourceBranches {
		return
	}
	slices.Sort(values)
	q.index, q.sources = index, values
}

// nicknameIndexMax: a nickname prefix matching at most this many customers
// is served from the nickname index and counted exactly; a commoner one is
// estimated, and planPrefix chooses how to read it (a variable for tests:
// testhooks_test.go).
var nicknameIndexMax int64 = 500

// Relative costs of an entry read by a plan, for planPrefix: one an index
// holds whole, and one whose row must be fetched (measured on MariaDB 10.11
// at a million customers: the last-seen walk 0.28 µs an entry, the nickname
// range with its sort 0.24 µs, a row fetched by id about 2 µs).
const (
	costEntryInIndex = 1.0
	costEntryWalked  = 1.2
	costEntryFetched = 8.0
)

// planPrefix chooses, for a nickname prefix too common to count (MySQL),
// between walking the sort order testing the prefix (about limit × total /
// matches entries: cheap for a common prefix) and reading every match from
// the nickname index, which holds both seen times (migration 0072), and
// sorting them (matches entries: cheap for a rare one). A surname held by
// 0.6% of a million customers is about 6,400 matches: the walk reads some
// 7,800 entries a page, 2.2 ms, the sort 1.5 ms; sorted by first seen, whose
// index does not hold the nickname, the walk fetches a row an entry and the
// sort wins by far. Tests on the masks need each match's row.
func (q *listQuery) planPrefix(limit int) {
	if !q.mysql || q.prefix == "" || q.exact || q.none || q.prefixRows <= 0 || q.stats == nil || q.stats.Total == 0 {
		return
	}
	// Index dives overestimate a range this narrow, up to about twice.
	matches := max(float64(q.prefixRows)/2, 1)
	walkEntry := costEntryWalked
	if q.f.sortColumn() == "first_seen_at" {
		walkEntry = costEntryFetched
	}
	sortEntry := costEntryInIndex
	if q.maskTests {
		sortEntry = costEntryFetched
	}
	walk := float64(limit+1) * float64(q.stats.Total) / matches * walkEntry
	if matches*sortEntry < walk {
		q.index = nicknameIndex
	}
}

// sourceIndexes are the source plan's indexes by sort column (migration
// 0071).
var sourceIndexes = map[string]string{
	"last_seen_at":  "ix_customers_source_last_seen",
	"first_seen_at": "ix_customers_source_first_seen",
}

// sourceUnion is the source plan's id query: a page from each branch,
// merged in the page's order and cut to limit.
func (q *listQuery) sourceUnion(col, order string, extra []string, extraArgs []any, limit int) (string, []any) {
	where, wargs := q.where(true, extra, extraArgs)
	var rest []int64
	for _, v := range sourceValues(q.sourceBit) {
		if !slices.Contains(q.sources, v) {
			rest = append(rest, v)
		}
	}
	var sql strings.Builder
	var args []any
	branches := 0
	branch := func(cond string, arg any) {
		if branches > 0 {
			sql.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&sql, "SELECT id, %s FROM (SELECT id, %s FROM customers%s WHERE %s AND %s ORDER BY %s LIMIT ?) b%d",
			col, col, q.hint(q.index), where, cond, order, branches)
		branches++
		args = append(args, wargs...)
		args = append(args, arg, limit)
	}
	for _, v := range q.sources {
		branch("src_mask = ?", v)
	}
	if len(rest) > 0 {
		branch("src_mask IN ?", rest)
	}
	sql.WriteString(" ORDER BY " + order + " LIMIT ?")
	return sql.String(), append(args, limit)
}

// sourceValues are the src_mask values holding the bit, ascending.
func sourceValues(bit int64) []int64 {
	var out []int64
	for v := int64(1); v < 1<<len(sourceBits); v++ {
		if v&bit != 0 {
			out = append(out, v)
		}
	}
	return out
}

// count says how many customers match. When the stats expect clearly more
// than countCap, it estimates from them without reading any row; otherwise it
// counts matches up to countCap (exact if there are no more), and estimates
// (or says "at least") beyond.
func (q *listQuery) count() (Total, error) {
	if q.exactN != nil {
		return Total{N: *q.exactN, Exact: true}, nil
	}
	if q.exact {
		where, args := q.where(true, nil, nil)
		var n int64
		err := q.db.Raw("SELECT COUNT(*) FROM customers"+q.hint(q.index)+" WHERE "+where, args...).Scan(&n).Error
		if err != nil {
			return Total{}, fmt.Errorf("models: count customers: %w", err)
		}
		return Total{N: n, Exact: true}, nil
	}
	est, known := 0.0, false
	if q.stats != nil {
		est, known = q.stats.estimate(q.f, q.apps)
		if known && q.prefix != "" {
			share, err := q.prefixShare()
			if err != nil {
				return Total{}, err
			}
			est *= share
		}
	}
	estimated := func(n int64) Total {
		return Total{N: roundSignificant(max(est, float64(n)), 2), AsOf: q.stats.AsOf}
	}
	if known && est >= float64(clearlyMany*q.countCap) {
		return estimated(0), nil
	}
	where, args := q.where(true, nil, nil)
	var n int64
	err := q.db.Raw("SELECT COUNT(*) FROM (SELECT id FROM customers"+q.hint(q.countIndex())+" WHERE "+where+" LIMIT ?) t",
		append(args, q.countCap+1)...).Scan(&n).Error
	if err != nil {
		return Total{}, fmt.Errorf("models: count customers: %w", err)
	}
	switch {
	case n <= int64(q.countCap):
		return Total{N: n, Exact: true}, nil
	case known:
		return estimated(n), nil
	}
	return Total{N: int64(q.countCap), AtLeast: true}, nil
}

// countIndex is the index a capped count walks. Counting needs no order, so
// a nickname prefix uses its own index; otherwise, when the sort's index would have to fetch rows to test the filters (the
// first-seen one covers none of them, migration 0063), the count walks the
// last-seen index, which covers them all and the first-seen bounds too.
func (q *listQuery) countIndex() string {
	if q.prefix != "" {
		// A nickname prefix is counted on the nickname index: the matches
		// are adjacent there, so a capped count reads about countCap entries
		// (a common surname, 0.6% of a million customers: 1 ms, against 70 ms
		// walking the last-seen index for matches spread through it).
		return nicknameIndex
	}
	if q.sources != nil {
		// The source's customers are adjacent on its index: a capped count
		// reads no more than the cap of them.
		return q.index
	}
	if q.index == "ix_customers_browse_first_seen" && len(q.testSQL) > 0 {
		return "ix_customers_browse_last_seen"
	}
	return q.index
}

// prefixShare is the share of the tenant's customers whose nickname starts
// with the searched prefix: SQLite counts; MySQL estimates the nickname
// index's range (index dives: within about a factor of two, and the total
// is marked as an estimate).
func (q *listQuery) prefixShare() (float64, error) {
	if q.stats.Total == 0 {
		return 0, nil
	}
	where, args := "tenant_id = ? AND nickname LIKE ? ESCAPE '!'", []any{q.tenantID, q.prefix}
	n := q.prefixRows // planSearch's estimate, on MySQL
	switch {
	case n >= 0:
	case q.mysql:
		var err error
		if n, err = q.explainRows(nicknameIndex, where, args); err != nil {
			return 0, err
		}
	default:
		if err := q.db.Raw("SELECT COUNT(*) FROM customers WHERE "+where, args...).Scan(&n).Error; err != nil {
			return 0, fmt.Errorf("models: count nickname prefix: %w", err)
		}
	}
	return min(float64(n)/float64(q.stats.Total), 1), nil
}

// explainRows is MySQL's estimate of the rows a condition reaches on an index.
func (q *listQuery) explainRows(index, where string, args []any) (int64, error) {
	rows, err := q.db.Raw("EXPLAIN SELECT COUNT(*) FROM customers"+q.hint(index)+" WHERE "+where, args...).Rows()
	if err != nil {
		return 0, fmt.Errorf("models: estimate customers: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var size int64
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		for i, c := range cols {
			if strings.EqualFold(c, "rows") {
				var n int64
				switch v := vals[i].(type) {
				case []byte:
					n, _ = strconv.ParseInt(string(v), 10, 64)
				case int64:
					n = v
				}
				size = max(size, n)
			}
		}
	}
	return size, rows.Err()
}

// roundSignificant rounds to d significant digits: an estimate should not
// look more precise than it is.
func roundSignificant(x float64, d int) int64 {
	if x < 1 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(x))-float64(d-1))
	if p < 1 {
		p = 1
	}
	return int64(math.Round(x/p) * p)
}

// AppsOfMask names the apps whose bits are set in mask, in id order.
func AppsOfMask(apps []BrowseApp, mask int64) []BrowseApp {
	out := make([]BrowseApp, 0, bits.OnesCount64(uint64(mask)))
	for _, a := range apps {
		if a.Bit != nil && *a.Bit >= 0 && *a.Bit < MaxMaskedApps && mask&(1<<*a.Bit) != 0 {
			out = append(out, a)
		}
	}
	// BrowseApps lists them by id already (the sort then moves nothing and
	// allocates nothing); other callers may not.
	slices.SortStableFunc(out, func(a, b BrowseApp) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
