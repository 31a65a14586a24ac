package web

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"oneid/app/binding"
	"oneid/app/wechat"
)

// wechatPushPrefix starts the paths WeChat pushes to. They are public, carry
// no session and skip the CSRF check: WeChat's signature authenticates them.
const wechatPushPrefix = "/wechat/"

// componentPush is the authorisation-event URL of OneID's third-party
// platform: the verify ticket every 10 minutes and the authorized,
// updateauthorized and unauthorized events. WeChat wants "success" in time, or
// it retries; a push that does not verify gets a 400 and changes nothing.
func (s *Server) componentPush(c *fiber.Ctx) error {
	q := wechat.ParseCallbackQuery(func(k string) string { return c.Query(k) })
	ev, err := s.apps.HandleComponentPush(c.UserContext(), q, c.Body())
	if err != nil {
		if _, refused := binding.AsRefusal(err); refused {
			return plainText(c, fiber.StatusNotFound, "no third-party platform is configured")
		}
		if errors.Is(err, wechat.ErrSignature) || errors.Is(err, wechat.ErrDecrypt) || errors.Is(err, wechat.ErrCallbackBody) {
			s.log.Warn("wechat component push refused", "request_id", requestID(c), "err", err)
			return plainText(c, fiber.StatusBadRequest, "bad push")
		}
		return err
	}
	s.log.Info("wechat component push", "request_id", requestID(c), "info_type", ev.InfoType, "authorizer_appid", ev.AuthorizerAppID)
	return plainText(c, fiber.StatusOK, "success")
}
