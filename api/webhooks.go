package api

import (
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/technicians"
)

// Webhooks serves Twilio's callbacks: inbound SMS (STOP, START and HELP from
// anyone; a technician answering an offer) and delivery status. Every call must carry a valid
// X-Twilio-Signature for the configured public URL.
type Webhooks struct {
	techs     *technicians.Service
	dispatch  *dispatch.Service
	notifier  *notify.Notifier
	authToken string
	publicURL string
}

// NewWebhooks returns the webhook handlers; authToken empty refuses every
// call (nothing can be verified).
func NewWebhooks(t *technicians.Service, d *dispatch.Service, n *notify.Notifier, authToken, publicURL string) *Webhooks {
	return &Webhooks{techs: t, dispatch: d, notifier: n, authToken: authToken, publicURL: publicURL}
}

// Routes lists the webhook routes: public, guarded by the signature.
func (w *Webhooks) Routes() []httpx.Route {
	return []httpx.Route{
		{Method: http.MethodPost, Path: "/v1/webhooks/twilio/sms", Public: true, Handler: w.inboundSMS},
		{Method: http.MethodPost, Path: "/v1/webhooks/twilio/status", Public: true, Handler: w.status},
	}
}

type twiml struct {
	XMLName xml.Name `xml:"Response"`
	Message string   `xml:"Message,omitempty"`
}

func (w *Webhooks) inboundSMS(c echo.Context) error {
	form, ok, err := notify.ReadSignedForm(c.Request(), w.authToken, w.publicURL)
	if err != nil {
		return errs.E(errs.Malformed, "could not read the webhook body")
	}
	if !ok {
		return errs.E(errs.Forbidden, "missing or invalid X-Twilio-Signature")
	}
	ctx := c.Request().Context()
	sid := form.Get("MessageSid")
	if sid == "" {
		return errs.InvalidField("MessageSid", "MessageSid is required")
	}
	if first, err := w.notifier.FirstInbound(ctx, sid); err != nil {
		return err
	} else if !first {
		return c.XML(http.StatusOK, twiml{}) // handled before: a replay changes nothing
	}
	from := form.Get("From")
	locale := "en"
	tech, err := w.techs.ByPhone(ctx, from)
	switch {
	case err == nil:
		locale = tech.Locale
	case errs.CodeOf(err) != errs.NotFound:
		return err
	}
	// STOP, START and HELP work for anyone, before anything else.
	var kind notify.Kind
	var data notify.Data
	switch notify.ParseKeyword(form.Get("Body")) {
	case notify.KeywordStop:
		if err := w.notifier.OptOut(ctx, from); err != nil {
			return err
		}
		kind = notify.KindOptedOut
	case notify.KeywordStart:
		if err := w.notifier.OptIn(ctx, from); err != nil {
			return err
		}
		kind = notify.KindOptedIn
	case notify.KeywordHelp:
		kind = notify.KindInfo
	default:
		if err != nil { // not a technician: no text asks a customer to reply
			kind = notify.KindNoReplies
		} else {
			kind, data = w.answer(c, tech, notify.ParseReply(form.Get("Body")))
		}
	}
	text, err := notify.Render(kind, locale, data)
	if err != nil {
		return err
	}
	return c.XML(http.StatusOK, twiml{Message: text})
}

// answer applies a technician's reply to their newest pending offer.
func (w *Webhooks) answer(c echo.Context, tech technicians.Technician, reply notify.Reply) (notify.Kind, notify.Data) {
	if reply == notify.ReplyUnknown {
		return notify.KindReplyHelp, notify.Data{}
	}
	o, err := w.dispatch.AnswerNewestOffer(c.Request().Context(), tech.ID, reply == notify.ReplyYes)
	var e *errs.Error
	switch {
	case err == nil && reply == notify.ReplyYes:
		r, _ := w.dispatch.Get(c.Request().Context(), dispatch.Caller{Role: "ops"}, o.RequestID)
		skill, err := w.dispatch.SkillName(c.Request().Context(), r.SkillCode, tech.Locale)
		if err != nil {
			skill = r.SkillCode // the job is taken either way; say so with the code
		}
		return notify.KindReplyAccepted, notify.Data{Skill: skill}
	case err == nil:
		return notify.KindReplyDeclined, notify.Data{}
	case errors.As(err, &e) && e.Code == errs.NotFound:
		return notify.KindReplyNoOffer, notify.Data{}
	case errors.As(err, &e) && e.Code == errs.Conflict:
		return notify.KindReplyTooLate, notify.Data{Reason: notify.ReasonOf(e.Reason)}
	}
	c.Logger().Error(err)
	return notify.KindReplyTooLate, notify.Data{}
}

func (w *Webhooks) status(c echo.Context) error {
	form, ok, err := notify.ReadSignedForm(c.Request(), w.authToken, w.publicURL)
	if err != nil {
		return errs.E(errs.Malformed, "could not read the webhook body")
	}
	if !ok {
		return errs.E(errs.Forbidden, "missing or invalid X-Twilio-Signature")
	}
	sid, status := form.Get("MessageSid"), form.Get("MessageStatus")
	if sid == "" || status == "" {
		return errs.InvalidField("MessageSid", "MessageSid and MessageStatus are required")
	}
	ctx := c.Request().Context()
	// The callback URL names the message, so a report settles a message
	// whose send answer was lost.
	m, found, err := w.notifier.RecordStatus(ctx, sid, status, form.Get("ErrorCode"), c.QueryParam("message"))
	if err != nil {
		return err
	}
	if found && m.Kind == notify.KindOffer && m.OfferID != nil && (m.State == notify.StateFailed || m.State == notify.StateUndelivered) {
		// The technician never got the offer: give the job to the next one.
		if err := w.dispatch.OfferMessageFailed(ctx, *m.OfferID, "offer SMS "+m.State); err != nil {
			return err
		}
	}
	return c.NoContent(http.StatusNoContent)
}
