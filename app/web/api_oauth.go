package web

import "github.com/gofiber/fiber/v2"

type oauthTicketRequest struct {
	Ticket string `json:"ticket"`
}

// apiOAuthTicket is POST /api/v1/oauth/ticket: the tenant's backend trades
// the ticket its H5 page received (?oneid_ticket=…) for who the visitor is.
// A ticket works once, for five minutes, for its own tenant's keys only.
func (s *Server) apiOAuthTicket(c *fiber.Ctx) error {
	var in oauthTicketRequest
	if err := decodeAPIBody(c, &in); err != nil {
		return err
	}
	who, err := s.flows.RedeemOAuthTicket(c.UserContext(), apiKeyOf(c).TenantID, in.Ticket)
	if err != nil {
		return err
	}
	return c.JSON(who)
}
