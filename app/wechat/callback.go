package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// MaxCallbackBody bounds a push body; real events are well under 2 KB.
const MaxCallbackBody = 64 << 10

// Callback errors. None of them says which check failed beyond its class, so a
// prober learns little.
var (
	ErrSignature    = errors.New("wechat: callback signature does not match")
	ErrCallbackBody = errors.New("wechat: callback body is malformed or too large")
	ErrDecrypt      = errors.New("wechat: callback ciphertext does not decrypt for this app")
)

// Signature is WeChat's callback signature: SHA-1 over the parts sorted
// lexicographically and joined with no separator, as lowercase hex. URL
// verification signs (token, timestamp, nonce); safe mode adds the Encrypt text.
func Signature(parts ...string) string {
	p := append([]string(nil), parts...)
	sort.Strings(p)
	h := sha1.New()
	for _, s := range p {
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sameSignature(want, got string) bool {
	return len(got) == 40 && subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(got))) == 1
}

// CallbackQuery is the query string of a push or a URL verification.
type CallbackQuery struct {
	Signature    string
	Timestamp    string
	Nonce        string
	EchoStr      string
	EncryptType  string // "aes" in safe mode
	MsgSignature string
	OpenID       string
}

// ParseCallbackQuery reads the query parameters through get (fiber's c.Query,
// url.Values.Get, …).
func ParseCallbackQuery(get func(string) string) CallbackQuery {
	return CallbackQuery{
		Signature:    get("signature"),
		Timestamp:    get("timestamp"),
		Nonce:        get("nonce"),
		EchoStr:      get("echostr"),
		EncryptType:  get("encrypt_type"),
		MsgSignature: get("msg_signature"),
		OpenID:       get("openid"),
	}
}

// VerifyURL checks WeChat's GET URL verification and returns the echostr to
// answer verbatim.
func VerifyURL(token string, q CallbackQuery) (string, error) {
	if q.Timestamp == "" || q.Nonce == "" || !sameSignature(Signature(token, q.Timestamp, q.Nonce), q.Signature) {
		return "", ErrSignature
	}
	return q.EchoStr, nil
}

// envelope is the safe-mode body: <xml><ToUserName/><Encrypt/></xml>.
type envelope struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName string   `xml:"ToUserName"`
	AppID      string   `xml:"AppId"`
	Encrypt    string   `xml:"Encrypt"`
}

// OpenPush checks a POSTed push and returns its plaintext XML. The signature
// must match whenever it is present; in safe mode (encrypt_type=aes)
// msg_signature must match too and the body is decrypted with cr, whose appid
// must be the one inside. A plaintext push is accepted only when cr is nil, so an
// app configured for safe mode cannot be downgraded.
func OpenPush(token string, cr *Crypter, q CallbackQuery, body []byte) ([]byte, error) {
	if len(body) > MaxCallbackBody {
		return nil, ErrCallbackBody
	}
	if q.Timestamp == "" || q.Nonce == "" {
		return nil, ErrSignature
	}
	if q.Signature != "" || q.EncryptType != "aes" {
		if !sameSignature(Signature(token, q.Timestamp, q.Nonce), q.Signature) {
			return nil, ErrSignature
		}
	}
	if q.EncryptType != "aes" {
		if cr != nil {
			return nil, fmt.Errorf("%w: plaintext push to a safe-mode app", ErrCallbackBody)
		}
		return body, nil
	}
	if cr == nil {
		return nil, fmt.Errorf("%w: encrypted push but no EncodingAESKey", ErrDecrypt)
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil || env.Encrypt == "" {
		return nil, ErrCallbackBody
	}
	if !sameSignature(Signature(token, q.Timestamp, q.Nonce, env.Encrypt), q.MsgSignature) {
		return nil, ErrSignature
	}
	return cr.Decrypt(env.Encrypt)
}

// Crypter is the safe-mode cipher of one app: AES-256-CBC with the key from
// the 43-character EncodingAESKey, IV = key[:16], PKCS#7 to 32-byte blocks, and
// plaintext random(16) ‖ len(msg) big-endian ‖ msg ‖ appid.
type Crypter struct {
	key   []byte
	block cipher.Block
	appID string
}

// NewCrypter checks the EncodingAESKey (43 characters, 32 bytes once decoded).
// appID is the official account's appid, or the component appid for component pushes.
func NewCrypter(encodingAESKey, appID string) (*Crypter, error) {
	if len(encodingAESKey) != 43 {
		return nil, errors.New("wechat: EncodingAESKey must be 43 characters")
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("wechat: EncodingAESKey is not valid base64 of 32 bytes")
	}
	if appID == "" {
		return nil, errors.New("wechat: crypter needs the appid")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &Crypter{key: key, block: block, appID: appID}, nil
}

// AppID is the appid the crypter writes and expects.
func (c *Crypter) AppID() string { return c.appID }

const padBlock = 32

// Encrypt seals msg for WeChat's scheme with a fresh random prefix.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		return "", err
	}
	return c.EncryptWithRandom(random, msg)
}

// EncryptWithRandom is Encrypt with a given 16-byte prefix (for test vectors).
func (c *Crypter) EncryptWithRandom(random, msg []byte) (string, error) {
	if len(random) != 16 {
		return "", errors.New("wechat: random prefix must be 16 bytes")
	}
	n := 20 + len(msg) + len(c.appID)
	pad := padBlock - n%padBlock
	plain := make([]byte, 0, n+pad)
	plain = append(plain, random...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, c.appID...)
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(c.block, c.key[:16]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Decrypt opens an Encrypt text. It checks the padding (1–32, all bytes
// equal), the declared length against the plaintext, and that the trailing
// appid is exactly ours.
func (c *Crypter) Decrypt(encrypted string) ([]byte, error) {
	if len(encrypted) > base64.StdEncoding.EncodedLen(MaxCallbackBody) {
		return nil, ErrDecrypt
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encrypted))
	if err != nil || len(data) < padBlock || len(data)%aes.BlockSize != 0 {
		return nil, ErrDecrypt
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(c.block, c.key[:16]).CryptBlocks(plain, data)
	plain, err = unpad(plain, padBlock)
	if err != nil {
		return nil, ErrDecrypt
	}
	if len(plain) < 20 {
		return nil, ErrDecrypt
	}
	msgLen := uint64(binary.BigEndian.Uint32(plain[16:20]))
	if msgLen > uint64(len(plain)-20) {
		return nil, ErrDecrypt
	}
	msg, appID := plain[20:20+msgLen], plain[20+msgLen:]
	if subtle.ConstantTimeCompare(appID, []byte(c.appID)) != 1 {
		return nil, ErrDecrypt
	}
	return msg, nil
}

// unpad strips strict PKCS#7 padding of at most block bytes.
func unpad(b []byte, block int) ([]byte, error) {
	if len(b) == 0 {
		return nil, ErrDecrypt
	}
	pad := int(b[len(b)-1])
	if pad < 1 || pad > block || pad > len(b) {
		return nil, ErrDecrypt
	}
	for _, v := range b[len(b)-pad:] {
		if int(v) != pad {
			return nil, ErrDecrypt
		}
	}
	return b[:len(b)-pad], nil
}

// SealPush encrypts a push the way WeChat sends it: the body
// <xml><ToUserName/><Encrypt/></xml> and the msg_signature for the query.
// toUser is the gh_ id (empty for component pushes, which carry AppId instead).
func SealPush(token string, cr *Crypter, toUser, timestamp, nonce string, msg []byte) (body []byte, msgSignature string, err error) {
	enc, err := cr.Encrypt(msg)
	if err != nil {
		return nil, "", err
	}
	var b bytes.Buffer
	b.WriteString("<xml>")
	if toUser != "" {
		writeCDATA(&b, "ToUserName", toUser)
	} else {
		writeCDATA(&b, "AppId", cr.appID)
	}
	writeCDATA(&b, "Encrypt", enc)
	b.WriteString("</xml>")
	return b.Bytes(), Signature(token, timestamp, nonce, enc), nil
}

// SealReply builds an encrypted passive reply:
// <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>.
func SealReply(token string, cr *Crypter, timestamp, nonce string, msg []byte) ([]byte, error) {
	enc, err := cr.Encrypt(msg)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("<xml>")
	writeCDATA(&b, "Encrypt", enc)
	writeCDATA(&b, "MsgSignature", Signature(token, timestamp, nonce, enc))
	b.WriteString("<TimeStamp>" + xmlText(timestamp) + "</TimeStamp>")
	writeCDATA(&b, "Nonce", nonce)
	b.WriteString("</xml>")
	return b.Bytes(), nil
}

// cdataEscaper keeps a value intact inside CDATA: "]]>" would end the
// section, and a CR would reach the reader as LF (XML normalises line ends
// inside CDATA too), so it leaves the section as &#13; (found by
// FuzzParseEvent).
var cdataEscaper = strings.NewReplacer("]]>", "]]]]><![CDATA[>", "\r", "]]>&#13;<![CDATA[")

func writeCDATA(b *bytes.Buffer, name, value string) {
	b.WriteString("<" + name + "><![CDATA[")
	b.WriteString(cdataEscaper.Replace(value))
	b.WriteString("]]></" + name + ">")
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Event is a decrypted push: an official-account event (subscribe, unsubscribe,
// SCAN) or a component notice (InfoType component_verify_ticket, authorized,
// updateauthorized, unauthorized).
type Event struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Event        string `xml:"Event"`
	EventKey     string `xml:"EventKey"`
	Ticket       string `xml:"Ticket"`

	AppID                        string `xml:"AppId"`
	InfoType                     string `xml:"InfoType"`
	ComponentVerifyTicket        string `xml:"ComponentVerifyTicket"`
	AuthorizerAppID              string `xml:"AuthorizerAppid"`
	AuthorizationCode            string `xml:"AuthorizationCode"`
	AuthorizationCodeExpiredTime int64  `xml:"AuthorizationCodeExpiredTime"`
	PreAuthCode                  string `xml:"PreAuthCode"`
}

// Event names.
const (
	EventSubscribe   = "subscribe"
	EventUnsubscribe = "unsubscribe"
	EventScan        = "SCAN"

	InfoVerifyTicket     = "component_verify_ticket"
	InfoAuthorized       = "authorized"
	InfoUpdateAuthorized = "updateauthorized"
	InfoUnauthorized     = "unauthorized"
)

// ParseEvent decodes a plaintext push.
func ParseEvent(plain []byte) (*Event, error) {
	if len(plain) > MaxCallbackBody {
		return nil, ErrCallbackBody
	}
	var e Event
	if err := xml.Unmarshal(plain, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCallbackBody, err)
	}
	return &e, nil
}

// Scene is the QR scene of a subscribe via a parametric code (EventKey
// "qrscene_<scene>") or of a SCAN (EventKey "<scene>"); "" otherwise.
func (e *Event) Scene() string {
	switch e.Event {
	case EventSubscribe:
		return strings.TrimPrefix(e.EventKey, "qrscene_")
	case EventScan:
		return e.EventKey
	}
	return ""
}

// DedupKey identifies a delivery across WeChat's retries: FromUserName +
// CreateTime for user events, AppId + InfoType + CreateTime for component notices.
func (e *Event) DedupKey() string {
	if e.InfoType != "" {
		return e.AppID + "|" + e.InfoType + "|" + strconv.FormatInt(e.CreateTime, 10)
	}
	return e.FromUserName + "|" + strconv.FormatInt(e.CreateTime, 10)
}

// XML renders the event as WeChat sends it (CDATA strings), omitting empty fields.
func (e *Event) XML() []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	str := func(name, v string) {
		if v != "" {
			writeCDATA(&b, name, v)
		}
	}
	num := func(name string, v int64) {
		if v != 0 {
			b.WriteString("<" + name + ">" + strconv.FormatInt(v, 10) + "</" + name + ">")
		}
	}
	str("AppId", e.AppID)
	str("ToUserName", e.ToUserName)
	str("FromUserName", e.FromUserName)
	num("CreateTime", e.CreateTime)
	str("MsgType", e.MsgType)
	str("Event", e.Event)
	str("EventKey", e.EventKey)
	str("Ticket", e.Ticket)
	str("InfoType", e.InfoType)
	str("ComponentVerifyTicket", e.ComponentVerifyTicket)
	str("AuthorizerAppid", e.AuthorizerAppID)
	str("AuthorizationCode", e.AuthorizationCode)
	num("AuthorizationCodeExpiredTime", e.AuthorizationCodeExpiredTime)
	str("PreAuthCode", e.PreAuthCode)
	b.WriteString("</xml>")
	return b.Bytes()
}
