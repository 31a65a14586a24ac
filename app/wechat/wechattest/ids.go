package wechattest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
)

// Person is a human being in the simulated WeChat. A person has one openid per
// app and one unionid per open-platform account, all derived from the person
// number, so a million followers need no million objects.
type Person uint64

// ids derives WeChat's identifiers from the simulator's seed. An openid is
// "o" + a 5-character prefix of the app + 22 characters of one AES block
// holding (the app's 8-byte tag, the person): 28 characters of [A-Za-z0-9_-],
// reversible by the simulator alone, and refused for any other app.
type ids struct {
	seed  []byte
	block cipher.Block
}

func newIDs(seed string) *ids {
	key := sha256.Sum256([]byte("wxsim-ids|" + seed))
	block, _ := aes.NewCipher(key[:16])
	return &ids{seed: []byte(seed), block: block}
}

func (x *ids) hash(parts ...string) [32]byte {
	h := sha256.New()
	h.Write(x.seed)
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// appID is "wx" + 16 hex digits.
func (x *ids) appID(kind, name string) string {
	h := x.hash("appid", kind, name)
	return "wx" + hex.EncodeToString(h[:8])
}

func (x *ids) secret(appID string) string {
	h := x.hash("secret", appID)
	return hex.EncodeToString(h[:16])
}

func (x *ids) ghID(appID string) string {
	h := x.hash("gh", appID)
	return "gh_" + hex.EncodeToString(h[:6])
}

// namespace is what an app (openids) or an open account (unionids) derives ids with.
type namespace struct {
	prefix string // 5 characters
	tag    [8]byte
}

func (x *ids) namespace(kind, id string) namespace {
	h := x.hash("ns", kind, id)
	var ns namespace
	copy(ns.tag[:], h[:8])
	ns.prefix = base64.RawURLEncoding.EncodeToString(h[8:14])[:5]
	return ns
}

func (x *ids) encode(ns namespace, p Person) string {
	var plain, ct [16]byte
	copy(plain[:8], ns.tag[:])
	binary.BigEndian.PutUint64(plain[8:], uint64(p))
	x.block.Encrypt(ct[:], plain[:])
	var out [28]byte
	out[0] = 'o'
	copy(out[1:6], ns.prefix)
	base64.RawURLEncoding.Encode(out[6:], ct[:])
	return string(out[:])
}

// decode returns the person behind an id of namespace ns.
func (x *ids) decode(ns namespace, id string) (Person, bool) {
	if len(id) != 28 || id[0] != 'o' || id[1:6] != ns.prefix {
		return 0, false
	}
	var ct, plain [16]byte
	n, err := strictB64.Decode(ct[:], []byte(id[6:]))
	if err != nil || n != 16 {
		return 0, false
	}
	x.block.Decrypt(plain[:], ct[:])
	if [8]byte(plain[:8]) != ns.tag {
		return 0, false
	}
	return Person(binary.BigEndian.Uint64(plain[8:])), true
}

// mix is splitmix64: cheap, well-spread attributes of generated followers.
func mix(v uint64) uint64 {
	v += 0x9e3779b97f4a7c15
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9
	v = (v ^ (v >> 27)) * 0x94d049bb133111eb
	return v ^ (v >> 31)
}

var strictB64 = base64.RawURLEncoding.Strict()

// encodeTo writes the id into dst (28 bytes) and returns it, without allocating.
func (x *ids) encodeTo(dst []byte, ns namespace, p Person) []byte {
	var plain, ct [16]byte
	copy(plain[:8], ns.tag[:])
	binary.BigEndian.PutUint64(plain[8:], uint64(p))
	x.block.Encrypt(ct[:], plain[:])
	dst = dst[:28]
	dst[0] = 'o'
	copy(dst[1:6], ns.prefix)
	base64.RawURLEncoding.Encode(dst[6:], ct[:])
	return dst
}
