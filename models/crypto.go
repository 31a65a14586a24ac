package models

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealer encrypts secrets at rest with AES-256-GCM. The associated data names
// where a ciphertext belongs (table, tenant, row, column), so a ciphertext copied
// into another row or column does not decrypt.
type Sealer struct {
	aead cipher.AEAD
}

// ErrSealedValue is returned when a ciphertext is damaged or belongs elsewhere.
var ErrSealedValue = errors.New("models: sealed value does not open (wrong key or wrong place)")

// NewSealer takes the 32-byte platform key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("models: secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("models: secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("models: secret key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns nonce ‖ ciphertext ‖ tag.
func (s *Sealer) Seal(plaintext []byte, ad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("models: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(ad)), nil
}

// Open reverses Seal; it fails with ErrSealedValue when the key or ad differ.
func (s *Sealer) Open(sealed []byte, ad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrSealedValue
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, ErrSealedValue
	}
	return plain, nil
}

// SealedAD builds the associated data for a tenant-owned secret column.
func SealedAD(table string, tenantID int64, rowKey, column string) string {
	return fmt.Sprintf("%s|%d|%s|%s", table, tenantID, rowKey, column)
}
