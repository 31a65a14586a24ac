package ingest

import (
	"encoding/json"
	"fmt"
)

// syncCheckpoint is where a sync resumes. user/get is a chain of pages, each
// named by the next_openid it starts from ("" for the first). Writers commit
// whole pages, possibly out of order, each with this checkpoint updated in
// the same transaction:
//
//   - Cursor is where the done prefix of the chain ends: every page before it
//     is committed, and a resumed sync lists from there.
//   - Done holds pages committed beyond the prefix (a later page finished
//     first). A resumed sync steps over them without listing or writing them
//     again, and the prefix swallows them as it reaches them.
//
// So each page's followers are written exactly once, whatever the order of
// commits and wherever the process died.
type syncCheckpoint struct {
	Cursor     string     `json:"cursor"`
	Pages      int        `json:"pages"` // pages in the done prefix
	Listed     int64      `json:"listed"`
	Subscribed int64      `json:"subscribed"`
	Rejected   int64      `json:"rejected,omitempty"`
	Done       []syncPage `json:"done,omitempty"`
	Complete   bool       `json:"complete,omitempty"` // the prefix reached the last page
}

// syncPage is one committed page of the follower list.
type syncPage struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Listed     int64  `json:"n"`
	Subscribed int64  `json:"sub"`
	Rejected   int64  `json:"rej,omitempty"`
	Last       bool   `json:"last,omitempty"`
}

func parseSyncCheckpoint(s string) (*syncCheckpoint, error) {
	cp := &syncCheckpoint{}
	if s == "" {
		return cp, nil
	}
	if err := json.Unmarshal([]byte(s), cp); err != nil {
		return nil, fmt.Errorf("ingest: sync checkpoint: %w", err)
	}
	return cp, nil
}

func (cp *syncCheckpoint) String() string {
	b, _ := json.Marshal(cp)
	return string(b)
}

// add records a committed page and moves the prefix over every page it
// now reaches. A page already recorded (the same From) is refused: it would
// be counted twice.
func (cp *syncCheckpoint) add(p syncPage) error {
	if cp.has(p.From) {
		return fmt.Errorf("ingest: sync page after %q is committed already", p.From)
	}
	cp.Listed += p.Listed
	cp.Subscribed += p.Subscribed
	cp.Rejected += p.Rejected
	cp.Done = append(cp.Done, p)
	for !cp.Complete {
		i := cp.find(cp.Cursor)
		if i < 0 {
			break
		}
		next := cp.Done[i]
		cp.Done = append(cp.Done[:i], cp.Done[i+1:]...)
		cp.Cursor = next.To
		cp.Pages++
		cp.Complete = next.Last
	}
	return nil
}

// has reports whether the page starting at from is committed beyond the
// prefix. (Pages of the prefix start before Cursor, and listing only moves on
// from Cursor, so they do not come up again.)
func (cp *syncCheckpoint) has(from string) bool {
	return cp.Complete || cp.find(from) >= 0
}

func (cp *syncCheckpoint) find(from string) int {
	for i, p := range cp.Done {
		if p.From == from {
			return i
		}
	}
	return -1
}

// skip returns the page committed beyond the prefix that starts at cursor.
func (cp *syncCheckpoint) skip(from string) (syncPage, bool) {
	if i := cp.find(from); i >= 0 {
		return cp.Done[i], true
	}
	return syncPage{}, false
}
