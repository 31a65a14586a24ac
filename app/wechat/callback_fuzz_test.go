package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"testing"
)

// Fuzz targets of the callback path: decryption (against a model written from
// WECHAT-API.md §7), the push envelope and its signatures, and the event XML.
// Seeds are real-looking pushes; testdata/fuzz holds what the fuzzers found.

// pushSeeds are plaintext pushes as WeChat sends them.
var pushSeeds = []string{
	// subscribe, plain and through a parametric QR code; SCAN; unsubscribe
	"<xml><ToUserName><![CDATA[gh_3f2a1b4c5d6e]]></ToUserName><FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWx3kQ]]></FromUserName><CreateTime>1714527000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>",
	"<xml><ToUserName><![CDATA[gh_3f2a1b4c5d6e]]></ToUserName>\n<FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWx3kQ]]></FromUserName>\n<CreateTime>1714527001</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[subscribe]]></Event>\n<EventKey><![CDATA[qrscene_门店-上海-001]]></EventKey>\n<Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==]]></Ticket>\n</xml>",
	"<xml><ToUserName><![CDATA[gh_3f2a1b4c5d6e]]></ToUserName><FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWx3kQ]]></FromUserName><CreateTime>1714527002</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>",
	"<xml><ToUserName><![CDATA[gh_3f2a1b4c5d6e]]></ToUserName><FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWx3kQ]]></FromUserName><CreateTime>1714527003</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>",
	// messages and events OneID drops
	"<xml><ToUserName><![CDATA[gh_3f2a1b4c5d6e]]></ToUserName><FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWx3kQ]]></FromUserName><CreateTime>1714527004</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好，请问门店几点开门？]]></Content><MsgId>24567890123456789</MsgId></xml>",
	"<xml><ToUserName><![CDATA[gh_3f2a1b4c5d6e]]></ToUserName><FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWx3kQ]]></FromUserName><CreateTime>1714527005</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>31.230416</Latitude><Longitude>121.473701</Longitude><Precision>65.000000</Precision></xml>",
	// third-party platform notices
	"<xml><AppId><![CDATA[wx1111111111111111]]></AppId><CreateTime>1413192605</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@lEHjsBEi_TPDey0IZxw4Zbb7JRYLOtEf9ksvDpSwzkwog3R6xEpdaK0yIW02aJ1vcEIwGcs0ODWnAg]]></ComponentVerifyTicket></xml>",
	"<xml><AppId><![CDATA[wx1111111111111111]]></AppId><CreateTime>1413192760</CreateTime><InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[wx2222222222222222]]></AuthorizerAppid><AuthorizationCode><![CDATA[queryauthcode@@@cKS-XK6Xs]]></AuthorizationCode><AuthorizationCodeExpiredTime>1413196360</AuthorizationCodeExpiredTime><PreAuthCode><![CDATA[preauthcode@@@xSwKpn3pFh]]></PreAuthCode></xml>",
	"<xml><AppId><![CDATA[wx1111111111111111]]></AppId><CreateTime>1413192760</CreateTime><InfoType><![CDATA[unauthorized]]></InfoType><AuthorizerAppid><![CDATA[wx2222222222222222]]></AuthorizerAppid></xml>",
	// written without CDATA, with a declaration, entities and a stray CR
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<xml><ToUserName>gh_3f2a1b4c5d6e</ToUserName><FromUserName>o&lt;x&gt;&amp;&#13;y</FromUserName><CreateTime> 1714527006 </CreateTime><MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_a]]&gt;b</EventKey></xml>",
	"<xml><Encrypt><![CDATA[x]]></Encrypt></xml>",
	"<xml><CreateTime>99999999999999999999</CreateTime></xml>",
	"<xml><FromUserName><![CDATA[a]]></FromUserName><FromUserName>b</FromUserName></xml>",
	"not xml",
}

// refDecrypt is WeChat's scheme read straight from WECHAT-API.md §7, with
// nothing shared with Crypter.Decrypt: the CBC plaintext is random(16) ‖
// len(msg) as 4 bytes big-endian ‖ msg ‖ appid ‖ PKCS#7 padding of 1 to 32
// bytes (all equal to the pad length); anything else is refused.
func refDecrypt(plain []byte, appID string) ([]byte, bool) {
	n := len(plain)
	if n < 32 || n%16 != 0 {
		return nil, false
	}
	pad := int(plain[n-1])
	if pad < 1 || pad > 32 {
		return nil, false
	}
	for _, b := range plain[n-pad:] {
		if int(b) != pad {
			return nil, false
		}
	}
	body := plain[:n-pad]
	if len(body) < 20 {
		return nil, false
	}
	declared := int64(binary.BigEndian.Uint32(body[16:20]))
	if declared > int64(len(body)-20) {
		return nil, false
	}
	if string(body[20+declared:]) != appID {
		return nil, false
	}
	return body[20 : 20+declared], true
}

// FuzzDecrypt: whatever the text, Decrypt returns ErrDecrypt or a message;
// a message it returns is refused by a crypter with the same key and another
// appid (the appid binds the ciphertext to one account), and re-encrypted it
// decrypts to itself.
func FuzzDecrypt(f *testing.F) {
	cr := vecCrypter(f)
	f.Add(vecEncrypt)
	f.Add("")
	f.Add("AAAA")
	f.Add(" " + vecEncrypt + "\n")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 64)))
	for _, s := range pushSeeds[:4] {
		enc, err := cr.EncryptWithRandom([]byte("0123456789abcdef"), []byte(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	other, err := NewCrypter(vecKey, "wxb11529c136998cb7")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg, err := cr.Decrypt(s)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || msg != nil {
				t.Fatalf("Decrypt = %q, %v: a refusal is ErrDecrypt alone", msg, err)
			}
			return
		}
		if m2, err := other.Decrypt(s); err == nil {
			t.Fatalf("a ciphertext for %s opens for another appid too: %q", cr.AppID(), m2)
		}
		enc, err := cr.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := cr.Decrypt(enc); err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("re-encryption does not round trip: %v", err)
		}
	})
}

// FuzzDecryptLayout drives Decrypt from the plaintext side: the fuzzer writes
// the CBC plaintext (prefix, declared length, message, appid, padding: seeded
// with well-formed ones), the test encrypts it raw, and Decrypt must agree
// with refDecrypt exactly: the same refusals, the same message.
func FuzzDecryptLayout(f *testing.F) {
	cr := vecCrypter(f)
	wellFormed := func(msg, appID string, declared int) []byte {
		p := layout(msg, appID, declared)
		pad := 32 - len(p)%32
		return append(p, bytes.Repeat([]byte{byte(pad)}, pad)...)
	}
	f.Add(wellFormed(vecPlain, vecAppID, len(vecPlain)))
	f.Add(wellFormed("", vecAppID, 0))
	f.Add(wellFormed(pushSeeds[0], vecAppID, len(pushSeeds[0])))
	f.Add(wellFormed("hi", vecAppID, 1000))
	f.Add(wellFormed("hi", vecAppID[:10], 2))
	f.Add(wellFormed("hi", vecAppID+"x", 2))
	p := layout("0123456789ab", vecAppID, 12) // 50 bytes: a pad of 14 ends at 64, and so does one of 14+16 from 34
	f.Add(append(append([]byte(nil), p[:34]...), bytes.Repeat([]byte{30}, 30)...))
	f.Fuzz(func(t *testing.T, plain []byte) {
		plain = plain[:len(plain)-len(plain)%16]
		if len(plain) > 4096 {
			return
		}
		data := make([]byte, len(plain))
		cbcEncrypt(cr, data, plain)
		got, err := cr.Decrypt(base64.StdEncoding.EncodeToString(data))
		want, ok := refDecrypt(plain, vecAppID)
		switch {
		case ok && err != nil:
			t.Fatalf("a well-formed plaintext is refused: %v", err)
		case !ok && err == nil:
			t.Fatalf("a malformed plaintext is accepted as %q", got)
		case ok && !bytes.Equal(got, want):
			t.Fatalf("Decrypt = %q, want %q", got, want)
		case err != nil && !errors.Is(err, ErrDecrypt):
			t.Fatalf("refusal %v is not ErrDecrypt", err)
		}
	})
}

// FuzzOpenPush sends arbitrary bodies with an arbitrary msg_signature and
// encrypt_type to a safe-mode app. Nothing but a correctly signed encrypted
// push may open: plaintext is a downgrade, and an accepted body's Encrypt
// must carry the msg_signature over (token, timestamp, nonce, Encrypt).
// Every refusal is one of the three callback errors. A plaintext-mode app
// (no crypter) gets its signed body back byte for byte.
func FuzzOpenPush(f *testing.F) {
	cr := vecCrypter(f)
	f.Add([]byte("<xml><ToUserName><![CDATA[gh_123456789012]]></ToUserName><Encrypt><![CDATA["+vecEncrypt+"]]></Encrypt></xml>"), vecMsgSig, "aes")
	f.Add([]byte("<xml><Encrypt>"+vecEncrypt+"</Encrypt></xml>"), vecMsgSig, "aes")
	f.Add([]byte("<xml><Encrypt><![CDATA["+vecEncrypt+"]]></Encrypt></xml>"), vecMsgSig, "")
	f.Add([]byte("<xml><Encrypt>"), "", "")
	f.Add([]byte{0xff, 0xfe}, "x", "aes")
	for _, s := range pushSeeds {
		f.Add([]byte(s), vecMsgSig, "")
		body, sig, err := SealPush(vecToken, cr, "gh_3f2a1b4c5d6e", vecTimestamp, vecNonce, []byte(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, sig, "aes")
	}
	q := CallbackQuery{Signature: vecURLSig, Timestamp: vecTimestamp, Nonce: vecNonce}
	f.Fuzz(func(t *testing.T, body []byte, msgSig, encType string) {
		q := q
		q.EncryptType, q.MsgSignature = encType, msgSig
		plain, err := OpenPush(vecToken, cr, q, body)
		if err != nil {
			if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrCallbackBody) && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("refusal %v is none of the callback errors", err)
			}
		} else {
			if encType != "aes" {
				t.Fatalf("a safe-mode app opened a %q push", encType)
			}
			var env envelope
			if xml.Unmarshal(body, &env) != nil || !sameSignature(Signature(vecToken, vecTimestamp, vecNonce, env.Encrypt), msgSig) {
				t.Fatalf("a push opened without a msg_signature over its Encrypt")
			}
			if want, err := cr.Decrypt(env.Encrypt); err != nil || !bytes.Equal(want, plain) {
				t.Fatalf("OpenPush gave %q, the Encrypt holds %q", plain, want)
			}
		}
		plain, err = OpenPush(vecToken, nil, q, body)
		switch {
		case encType == "aes":
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrCallbackBody) {
				t.Fatalf("an encrypted push to a plaintext app: %v", err)
			}
		case len(body) > MaxCallbackBody:
			if !errors.Is(err, ErrCallbackBody) {
				t.Fatalf("an oversized body: %v", err)
			}
		case err != nil || !bytes.Equal(plain, body):
			t.Fatalf("a signed plaintext push came back as %q, %v", plain, err)
		}
	})
}

// FuzzSealedPush seals a push as WeChat does and then changes one byte of
// the body, or the timestamp, or the nonce. The untouched push opens to the
// message; a changed body either is refused or still opens to the very same
// message (the byte was outside the signed Encrypt, in ToUserName say); a
// changed timestamp or nonce is refused.
func FuzzSealedPush(f *testing.F) {
	cr := vecCrypter(f)
	for i, s := range pushSeeds {
		f.Add([]byte(s), vecTimestamp, vecNonce, uint16(i*37), byte('A'+i))
	}
	f.Add([]byte(vecPlain), "1", "n", uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, msg []byte, timestamp, nonce string, pos uint16, to byte) {
		if len(msg) > 8<<10 {
			return
		}
		body, sig, err := SealPush(vecToken, cr, "gh_3f2a1b4c5d6e", timestamp, nonce, msg)
		if err != nil {
			t.Fatal(err)
		}
		q := CallbackQuery{Signature: Signature(vecToken, timestamp, nonce), Timestamp: timestamp, Nonce: nonce,
			EncryptType: "aes", MsgSignature: sig}
		plain, err := OpenPush(vecToken, cr, q, body)
		if timestamp == "" || nonce == "" {
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("a push without timestamp or nonce: %v", err)
			}
			return
		}
		if err != nil || !bytes.Equal(plain, msg) {
			t.Fatalf("a sealed push opens as %q, %v", plain, err)
		}
		changed := append([]byte(nil), body...)
		i := int(pos) % len(changed)
		if changed[i] != to {
			changed[i] = to
			if plain, err := OpenPush(vecToken, cr, q, changed); err == nil && !bytes.Equal(plain, msg) {
				t.Fatalf("byte %d changed to %q: the push opens as %q", i, to, plain)
			}
		}
		for _, q2 := range []CallbackQuery{q, q} {
			q2 := q2
			if to%2 == 0 {
				q2.Timestamp += string(rune('0' + to%10))
			} else {
				q2.Nonce += string(rune('a' + to%26))
			}
			q2.Signature = ""
			if _, err := OpenPush(vecToken, cr, q2, body); !errors.Is(err, ErrSignature) {
				t.Fatalf("a replay with timestamp %q nonce %q: %v", q2.Timestamp, q2.Nonce, err)
			}
		}
	})
}

// FuzzCrypterPlaintext: any message up to the body limit survives Encrypt
// and Decrypt, and its ciphertext opens for no other appid.
func FuzzCrypterPlaintext(f *testing.F) {
	cr := vecCrypter(f)
	other, err := NewCrypter(vecKey, vecAppID[:len(vecAppID)-1])
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(vecPlain))
	f.Add([]byte{})
	for _, s := range pushSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		enc, err := cr.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cr.Decrypt(enc)
		if len(msg) <= MaxCallbackBody-64 && (err != nil || !bytes.Equal(got, msg)) {
			t.Fatalf("round trip of %d bytes failed: %v", len(msg), err)
		}
		if m, err := other.Decrypt(enc); err == nil {
			t.Fatalf("opens for a truncated appid as %q", m)
		}
	})
}

// FuzzParseEvent: a push either parses or is ErrCallbackBody; an event that
// parses, written back by Event.XML (what the simulator sends), parses to
// the same event, also after sealing and opening it as a safe-mode push; and
// its dedup key and scene follow from its fields.
func FuzzParseEvent(f *testing.F) {
	cr := vecCrypter(f)
	for _, s := range pushSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvent(data)
		if err != nil {
			if !errors.Is(err, ErrCallbackBody) || ev != nil {
				t.Fatalf("ParseEvent = %v, %v: a refusal is ErrCallbackBody alone", ev, err)
			}
			return
		}
		again, err := ParseEvent(ev.XML())
		if err != nil {
			t.Fatalf("Event.XML() does not parse: %v\n%s", err, ev.XML())
		}
		if *again != *ev {
			t.Fatalf("Event.XML() changed the event:\n%+v\n%+v\n%q", *ev, *again, ev.XML())
		}
		body, sig, err := SealPush(vecToken, cr, "gh_3f2a1b4c5d6e", vecTimestamp, vecNonce, ev.XML())
		if err != nil {
			t.Fatal(err)
		}
		plain, err := OpenPush(vecToken, cr, CallbackQuery{Timestamp: vecTimestamp, Nonce: vecNonce, EncryptType: "aes", MsgSignature: sig}, body)
		if err != nil {
			t.Fatalf("the sealed event does not open: %v", err)
		}
		if sealed, err := ParseEvent(plain); err != nil || *sealed != *ev {
			t.Fatalf("the sealed event changed: %+v, %v", sealed, err)
		}
		if ev.InfoType == "" && ev.DedupKey() != (&Event{FromUserName: ev.FromUserName, CreateTime: ev.CreateTime}).DedupKey() {
			t.Fatalf("a user event's dedup key depends on more than FromUserName and CreateTime")
		}
		switch scene := ev.Scene(); {
		case ev.Event == EventScan && scene != ev.EventKey,
			ev.Event == EventSubscribe && "qrscene_"+scene != ev.EventKey && scene != ev.EventKey,
			ev.Event != EventScan && ev.Event != EventSubscribe && scene != "":
			t.Fatalf("event %q key %q: scene %q", ev.Event, ev.EventKey, scene)
		}
	})
}
