package wechat

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// The vector of WECHAT-API.md §7 (WxJava's WxCryptUtilTest.testAesEncrypt).
const (
	vecKey       = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	vecAppID     = "wxb11529c136998cb6"
	vecToken     = "pamtest"
	vecTimestamp = "1409304348"
	vecNonce     = "xxxxxx"
	vecRandom    = "aaaabbbbccccdddd"
	vecPlain     = "我是中文abcd123"
	vecEncrypt   = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
	vecMsgSig    = "82c962d39941aa48552f90ef55aa323dc620cc10"
	vecURLSig    = "76480565cbe296026c53aaacd1ad523a1ddba24f"
)

func vecCrypter(t testing.TB) *Crypter {
	t.Helper()
	cr, err := NewCrypter(vecKey, vecAppID)
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

func TestPublishedVector(t *testing.T) {
	cr := vecCrypter(t)
	t.Run("EncryptsByteForByte", func(t *testing.T) {
		got, err := cr.EncryptWithRandom([]byte(vecRandom), []byte(vecPlain))
		if err != nil {
			t.Fatal(err)
		}
		if got != vecEncrypt {
			t.Fatalf("encrypt = %s, want %s", got, vecEncrypt)
		}
	})
	t.Run("Decrypts", func(t *testing.T) {
		got, err := cr.Decrypt(vecEncrypt)
		if err != nil || string(got) != vecPlain {
			t.Fatalf("decrypt = %q, %v", got, err)
		}
	})
	t.Run("MsgSignature", func(t *testing.T) {
		if got := Signature(vecToken, vecTimestamp, vecNonce, vecEncrypt); got != vecMsgSig {
			t.Fatalf("msg_signature = %s, want %s", got, vecMsgSig)
		}
	})
	t.Run("URLSignature", func(t *testing.T) {
		if got := Signature(vecToken, vecTimestamp, vecNonce); got != vecURLSig {
			t.Fatalf("signature = %s, want %s", got, vecURLSig)
		}
		if got := Signature("a", "b", "c"); got != "a9993e364706816aba3e25717850c26c9cd0d89d" {
			t.Fatalf("Signature(a,b,c) = %s", got)
		}
	})
	t.Run("OpenPushWithVector", func(t *testing.T) {
		body := []byte("<xml><ToUserName><![CDATA[gh_123456789012]]></ToUserName><Encrypt><![CDATA[" + vecEncrypt + "]]></Encrypt></xml>")
		q := CallbackQuery{Signature: vecURLSig, Timestamp: vecTimestamp, Nonce: vecNonce, EncryptType: "aes", MsgSignature: vecMsgSig}
		got, err := OpenPush(vecToken, cr, q, body)
		if err != nil || string(got) != vecPlain {
			t.Fatalf("OpenPush = %q, %v", got, err)
		}
	})
}

func TestVerifyURL(t *testing.T) {
	cases := []struct {
		name string
		q    CallbackQuery
		ok   bool
	}{
		{"Valid", CallbackQuery{Signature: vecURLSig, Timestamp: vecTimestamp, Nonce: vecNonce, EchoStr: "echo123"}, true},
		{"ValidUppercaseHex", CallbackQuery{Signature: strings.ToUpper(vecURLSig), Timestamp: vecTimestamp, Nonce: vecNonce, EchoStr: "echo123"}, true},
		{"WrongSignature", CallbackQuery{Signature: vecMsgSig, Timestamp: vecTimestamp, Nonce: vecNonce, EchoStr: "x"}, false},
		{"OtherTimestamp", CallbackQuery{Signature: vecURLSig, Timestamp: "1409304349", Nonce: vecNonce}, false},
		{"MissingNonce", CallbackQuery{Signature: Signature(vecToken, vecTimestamp, ""), Timestamp: vecTimestamp}, false},
		{"Empty", CallbackQuery{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			echo, err := VerifyURL(vecToken, tc.q)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && echo != tc.q.EchoStr {
				t.Fatalf("echo = %q", echo)
			}
		})
	}
}

func TestCrypterRoundTrip(t *testing.T) {
	cr := vecCrypter(t)
	for _, n := range []int{0, 1, 11, 12, 13, 31, 32, 33, 100, 1000, 4000} {
		msg := bytes.Repeat([]byte("x"), n)
		enc, err := cr.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cr.Decrypt(enc)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("len %d: round trip = %d bytes, %v", n, len(got), err)
		}
	}
	enc1, _ := cr.Encrypt([]byte("same"))
	enc2, _ := cr.Encrypt([]byte("same"))
	if enc1 == enc2 {
		t.Fatal("two encryptions of one message are equal: the random prefix is not random")
	}
}

// craft encrypts an arbitrary plaintext (already laid out) with padding pad.
func craft(cr *Crypter, plain []byte, pad int) string {
	p := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	for len(p)%16 != 0 {
		p = append(p, byte(pad))
	}
	out := make([]byte, len(p))
	cbcEncrypt(cr, out, p)
	return base64.StdEncoding.EncodeToString(out)
}

func layout(msg, appID string, declared int) []byte {
	b := []byte("0123456789abcdef")
	b = binary.BigEndian.AppendUint32(b, uint32(declared))
	return append(append(b, msg...), appID...)
}

func TestDecryptRejects(t *testing.T) {
	cr := vecCrypter(t)
	other, _ := NewCrypter("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg", vecAppID)
	fromOther, _ := other.Encrypt([]byte("hello"))
	otherApp, _ := NewCrypter(vecKey, "wx0000000000000000")
	forOtherApp, _ := otherApp.Encrypt([]byte("hello"))
	cases := []struct {
		name string
		enc  string
	}{
		{"NotBase64", "%%%"},
		{"Empty", ""},
		{"ShortOneBlock", base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"NotBlockMultiple", base64.StdEncoding.EncodeToString(make([]byte, 40))},
		{"OtherKey", fromOther},
		{"OtherAppID", forOtherApp},
		{"PadZero", craft(cr, layout("hi", vecAppID, 2), 0)},
		{"PadTooLarge", craft(cr, layout("hi", vecAppID, 2), 33)},
		{"LengthBeyondPlaintext", craft(cr, layout("hi", vecAppID, 1000), 32-(20+2+len(vecAppID))%32)},
		{"LengthHuge", craft(cr, layout("hi", vecAppID, 0xffffffff), 32-(20+2+len(vecAppID))%32)},
		{"AppIDTruncated", craft(cr, layout("hi", vecAppID[:10], 2), 32-(20+2+10)%32)},
		{"TooLong", strings.Repeat("A", 2*MaxCallbackBody)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if msg, err := cr.Decrypt(tc.enc); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Decrypt = %q, %v; want ErrDecrypt", msg, err)
			}
		})
	}
}

func TestOpenPush(t *testing.T) {
	cr := vecCrypter(t)
	msg := (&Event{ToUserName: "gh_0123456789ab", FromUserName: "oUser", CreateTime: 1700000000, MsgType: "event", Event: EventSubscribe, EventKey: "qrscene_42"}).XML()
	body, msgSig, err := SealPush(vecToken, cr, "gh_0123456789ab", "1700000000", "nonce1", msg)
	if err != nil {
		t.Fatal(err)
	}
	good := CallbackQuery{Signature: Signature(vecToken, "1700000000", "nonce1"), Timestamp: "1700000000", Nonce: "nonce1", EncryptType: "aes", MsgSignature: msgSig}
	plain, err := OpenPush(vecToken, cr, good, body)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEvent(plain)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Event != EventSubscribe || ev.FromUserName != "oUser" || ev.Scene() != "42" || ev.CreateTime != 1700000000 {
		t.Fatalf("event = %+v", ev)
	}
	if ev.DedupKey() != "oUser|1700000000" {
		t.Fatalf("dedup key = %s", ev.DedupKey())
	}

	bad := func(mut func(q *CallbackQuery) []byte) error {
		q := good
		b := mut(&q)
		if b == nil {
			b = body
		}
		_, err := OpenPush(vecToken, cr, q, b)
		return err
	}
	cases := []struct {
		name string
		mut  func(q *CallbackQuery) []byte
		want error
	}{
		{"WrongMsgSignature", func(q *CallbackQuery) []byte { q.MsgSignature = vecMsgSig; return nil }, ErrSignature},
		{"WrongSignature", func(q *CallbackQuery) []byte { q.Signature = vecURLSig; return nil }, ErrSignature},
		{"ReplayedWithOtherNonce", func(q *CallbackQuery) []byte { q.Nonce = "nonce2"; return nil }, ErrSignature},
		{"PlaintextDowngrade", func(q *CallbackQuery) []byte { q.EncryptType = ""; return msg }, ErrCallbackBody},
		{"BodyTooLarge", func(q *CallbackQuery) []byte { return bytes.Repeat([]byte("a"), MaxCallbackBody+1) }, ErrCallbackBody},
		{"NotXML", func(q *CallbackQuery) []byte { return []byte("not xml") }, ErrCallbackBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := bad(tc.mut); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("PlaintextModeChecksSignature", func(t *testing.T) {
		q := CallbackQuery{Signature: Signature(vecToken, "1", "n"), Timestamp: "1", Nonce: "n"}
		if got, err := OpenPush(vecToken, nil, q, msg); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("plaintext push = %v", err)
		}
		q.Signature = vecURLSig
		if _, err := OpenPush(vecToken, nil, q, msg); !errors.Is(err, ErrSignature) {
			t.Fatalf("forged plaintext push: err = %v", err)
		}
	})
}

func TestNewCrypterRejectsBadKeys(t *testing.T) {
	for _, k := range []string{"", "short", vecKey + "H", strings.Repeat("!", 43)} {
		if _, err := NewCrypter(k, vecAppID); err == nil {
			t.Errorf("NewCrypter(%q) accepted", k)
		}
	}
}

func TestComponentEventXMLRoundTrip(t *testing.T) {
	in := Event{AppID: "wx1111111111111111", CreateTime: 1413192605, InfoType: InfoAuthorized, AuthorizerAppID: "wx2222222222222222",
		AuthorizationCode: "code]]>x", AuthorizationCodeExpiredTime: 1413196205, PreAuthCode: "pre"}
	out, err := ParseEvent(in.XML())
	if err != nil {
		t.Fatal(err)
	}
	if *out != in {
		t.Fatalf("round trip = %+v, want %+v", *out, in)
	}
}

func cbcEncrypt(c *Crypter, dst, src []byte) {
	cipher.NewCBCEncrypter(c.block, c.key[:16]).CryptBlocks(dst, src)
}
