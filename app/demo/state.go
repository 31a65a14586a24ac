package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// state is demo.json in the data folder (mode 0600, like secret.key): the
// demo workspace's slug, the demo admin's password (printed at every start)
// and whether its customers were written to the end.
type state struct {
	Slug     string `json:"slug"`
	Password string `json:"password"`
	Seeded   bool   `json:"seeded"`
}

const stateFile = "demo.json"

func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &state{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("demo: %s is damaged (%v); delete it and start again", filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

// save writes the state through a temporary file, so a crash leaves the old one.
func (st *state) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
