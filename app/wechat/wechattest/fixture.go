package wechattest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Fixture describes a simulated world: open-platform accounts, apps with their
// principals, verification and follower counts, and third-party platforms.
// See README.md for the format.
type Fixture struct {
	Seed            string             `json:"seed,omitempty"`
	TokenTTLSeconds int                `json:"token_ttl_seconds,omitempty"`
	OpenAccounts    []FixtureOpen      `json:"open_accounts,omitempty"`
	Apps            []FixtureApp       `json:"apps,omitempty"`
	Components      []FixtureComponent `json:"components,omitempty"`
}

// FixtureOpen is an open account with a local id for apps to refer to.
type FixtureOpen struct {
	ID string `json:"id"`
	OpenAccountSpec
}

// FixtureApp is an app; OpenAccount names a FixtureOpen id (or an open_appid).
type FixtureApp struct {
	AppSpec
	OpenAccount string `json:"open_account,omitempty"`
}

// FixtureComponent is a third-party platform; its verify ticket is pushed to
// callback_url every ticket_interval_seconds (default 600) by the standalone server.
type FixtureComponent struct {
	ComponentSpec
	TicketIntervalSeconds int `json:"ticket_interval_seconds,omitempty"`
}

// LoadFixture reads a fixture file, refusing unknown fields.
func LoadFixture(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wechattest: fixture: %w", err)
	}
	return ParseFixture(b)
}

// ParseFixture decodes a fixture.
func ParseFixture(b []byte) (*Fixture, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var f Fixture
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("wechattest: fixture: %w", err)
	}
	return &f, nil
}

// Options are the simulator options the fixture sets.
func (f *Fixture) Options() []Option {
	var o []Option
	if f.Seed != "" {
		o = append(o, WithSeed(f.Seed))
	}
	if f.TokenTTLSeconds > 0 {
		o = append(o, WithTokenTTL(time.Duration(f.TokenTTLSeconds)*time.Second))
	}
	return o
}

// Apply creates the fixture's accounts, apps and components.
func (s *Sim) Apply(f *Fixture) error {
	local := map[string]string{}
	for i, o := range f.OpenAccounts {
		if o.Name == "" {
			o.Name = o.ID
		}
		id := s.AddOpenAccount(o.OpenAccountSpec)
		if o.ID != "" {
			if _, dup := local[o.ID]; dup {
				return fmt.Errorf("wechattest: fixture: open account id %q appears twice", o.ID)
			}
			local[o.ID] = id
		}
		f.OpenAccounts[i].OpenAppID = id
	}
	for i, a := range f.Apps {
		if a.OpenAccount != "" {
			id, ok := local[a.OpenAccount]
			if !ok {
				id = a.OpenAccount
			}
			a.OpenAppID = id
		}
		info, err := s.AddApp(a.AppSpec)
		if err != nil {
			return fmt.Errorf("wechattest: fixture: app %q: %w", a.Name, err)
		}
		f.Apps[i].AppID, f.Apps[i].Secret = info.AppID, info.Secret
	}
	for i, c := range f.Components {
		spec, err := s.AddComponent(c.ComponentSpec)
		if err != nil {
			return fmt.Errorf("wechattest: fixture: component: %w", err)
		}
		f.Components[i].ComponentSpec = spec
	}
	return nil
}
