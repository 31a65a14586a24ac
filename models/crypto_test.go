package models

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealerBindsCiphertextToItsPlace(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ad := SealedAD("apps", 1, "wx0123456789abcdef", "secret")
	sealed, err := s.Seal([]byte("app-secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("app-secret")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	got, err := s.Open(sealed, ad)
	if err != nil || string(got) != "app-secret" {
		t.Fatalf("open in place: %q %v", got, err)
	}
	for name, otherAD := range map[string]string{
		"OtherTenant": SealedAD("apps", 2, "wx0123456789abcdef", "secret"),
		"OtherApp":    SealedAD("apps", 1, "wx0123456789abcdee", "secret"),
		"OtherColumn": SealedAD("apps", 1, "wx0123456789abcdef", "aes_key"),
	} {
		if _, err := s.Open(sealed, otherAD); !errors.Is(err, ErrSealedValue) {
			t.Errorf("%s: a ciphertext copied elsewhere must not open, got %v", name, err)
		}
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed, ad); !errors.Is(err, ErrSealedValue) {
		t.Errorf("another key must not open it, got %v", err)
	}
	if _, err := s.Open(sealed[:10], ad); !errors.Is(err, ErrSealedValue) {
		t.Errorf("a truncated value must not open, got %v", err)
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Error("a short key must be refused")
	}
}
