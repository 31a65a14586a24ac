package models

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm"
)

// User is a person who signs in. A person is not tenant-owned: one account may
// belong to several tenants (agencies do) through memberships.
type User struct {
	ID           int64 `gorm:"primaryKey"`
	Email        string
	Name         string
	PasswordHash string
	Locale       string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ErrEmailTaken is returned when an account with the email already exists.
var ErrEmailTaken = errors.New("models: an account with this email already exists")

// NormalizeEmail is the form emails are stored and looked up in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CreateUser inserts a person; the email must be free.
func CreateUser(db *gorm.DB, u *User) error {
	u.Email = NormalizeEmail(u.Email)
	u.Name = strings.TrimSpace(u.Name)
	if _, err := FindUserByEmail(db, u.Email); err == nil {
		return ErrEmailTaken
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := db.Create(u).Error; err != nil {
		if isDuplicateKey(err) {
			return ErrEmailTaken
		}
		return fmt.Errorf("models: create user: %w", err)
	}
	return nil
}

// FindUser loads a person by id.
func FindUser(db *gorm.DB, id int64) (*User, error) {
	var u User
	if err := db.Where("id = ?", id).Take(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// FindUserByEmail loads a person by email (compared in normalised form).
func FindUserByEmail(db *gorm.DB, email string) (*User, error) {
	var u User
	if err := db.Where("email = ?", NormalizeEmail(email)).Take(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// Password hashing: argon2id with OWASP's recommended minimum (19 MiB, two
// passes, one lane). Each hash holds 19 MiB for ~50 ms, so a PasswordHasher
// bounds how many run at once: a burst of sign-ins queues instead of exhausting
// memory.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// ErrBadPassword is returned when a password does not match its hash.
var ErrBadPassword = errors.New("models: password does not match")

// PasswordHasher hashes and verifies passwords with bounded concurrency.
type PasswordHasher struct {
	slots chan struct{}
}

// NewPasswordHasher allows concurrent hashes; zero means twice the CPU count.
func NewPasswordHasher(concurrent int) *PasswordHasher {
	if concurrent <= 0 {
		concurrent = 2 * runtime.NumCPU()
	}
	return &PasswordHasher{slots: make(chan struct{}, concurrent)}
}

// Hash returns a PHC-format argon2id hash of password.
func (h *PasswordHasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("models: password salt: %w", err)
	}
	key, err := h.derive(ctx, password, salt, argonMemoryKiB, argonTime, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks password against a hash made by Hash. It answers ErrBadPassword
// for a wrong password.
func (h *PasswordHasher) Verify(ctx context.Context, encoded, password string) error {
	var version int
	var mem, iters uint32
	var threads uint8
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("models: password hash is not argon2id")
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("models: password hash has an unknown argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return errors.New("models: password hash has unreadable parameters")
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return errors.New("models: password hash is damaged")
	}
	got, err := h.derive(ctx, password, salt, mem, iters, threads, uint32(len(want)))
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrBadPassword
	}
	return nil
}

// VerifyNobody spends the time of one verification, for a sign-in with an
// unknown email, so timing does not tell which accounts exist.
func (h *PasswordHasher) VerifyNobody(ctx context.Context, password string) {
	_ = h.Verify(ctx, nobodysHash, password)
}

// nobodysHash has the parameters of a real hash and matches no password anyone
// would type: verifying against it costs exactly what a real verification does.
const nobodysHash = "$argon2id$v=19$m=19456,t=2,p=1$bm8gYWNjb3VudCBoZXJlIQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func (h *PasswordHasher) derive(ctx context.Context, password string, salt []byte, mem, iters uint32, threads uint8, keyLen uint32) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("models: waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	return argon2.IDKey([]byte(password), salt, iters, mem, threads, keyLen), nil
}
