package web

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"oneid/app/ingest"
	"oneid/app/wechat"
)

// callbackPrefix starts every official account's callback URL (the key is
// apps.callback_key). Under wechatPushPrefix: no session, no CSRF token.
const callbackPrefix = "/wechat/callback/"

// NewCallbacks builds the receiver of official accounts' pushes from the
// application's dependencies; its worker (Run) is the caller's to start.
func NewCallbacks(d Deps) *ingest.Callbacks {
	w := d.Config.WeChat
	return ingest.NewCallbacks(ingest.CallbacksConfig{DB: d.DB, WeChat: d.WeChat, Sealer: d.Sealer, Log: d.Log, Now: d.Now,
		Component: wechat.Component{AppID: w.ComponentAppID, Secret: w.ComponentSecret, Token: w.ComponentToken, AESKey: w.ComponentAESKey}})
}

// callbackVerify answers WeChat's URL verification (GET with echostr) when
// the signature is the app's.
func (s *Server) callbackVerify(c *fiber.Ctx) error {
	q := wechat.ParseCallbackQuery(func(k string) string { return c.Query(k) })
	echo, err := s.callbacks.VerifyURL(c.UserContext(), c.Params("key"), q)
	if err != nil {
		return s.callbackRefusal(c, err)
	}
	return plainText(c, fiber.StatusOK, echo)
}

// callbackPush takes a push: stored first, then answered "success"; the
// worker resolves it. A push that cannot be stored within 4 s is answered
// 503, so WeChat retries it; one that does not verify changes nothing.
func (s *Server) callbackPush(c *fiber.Ctx) error {
	if c.Request().Header.ContentLength() > wechat.MaxCallbackBody || len(c.Body()) > wechat.MaxCallbackBody {
		return plainText(c, fiber.StatusRequestEntityTooLarge, "too large")
	}
	q := wechat.ParseCallbackQuery(func(k string) string { return c.Query(k) })
	if err := s.callbacks.Receive(c.UserContext(), c.Params("key"), q, c.Body()); err != nil {
		return s.callbackRefusal(c, err)
	}
	return plainText(c, fiber.StatusOK, "success")
}

// callbackRefusal answers a push or verification that failed, saying no more
// than its class: an unknown key is a bare 404, like any missing page.
func (s *Server) callbackRefusal(c *fiber.Ctx, err error) error {
	switch {
	case errors.Is(err, ingest.ErrUnknownCallback):
		return plainText(c, fiber.StatusNotFound, "not found")
	case errors.Is(err, wechat.ErrSignature):
		s.log.Warn("wechat push refused: signature", "request_id", requestID(c))
		return plainText(c, fiber.StatusForbidden, "bad signature")
	case ingest.IsRefusal(err):
		s.log.Warn("wechat push refused", "request_id", requestID(c), "err", err)
		return plainText(c, fiber.StatusBadRequest, "bad push")
	case errors.Is(err, ingest.ErrInboxUnavailable):
		s.log.Error("wechat push not stored in time; WeChat will retry", "request_id", requestID(c), "err", err)
		return plainText(c, fiber.StatusServiceUnavailable, "busy")
	}
	return err
}

func plainText(c *fiber.Ctx, status int, body string) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.Status(status).SendString(body)
}
