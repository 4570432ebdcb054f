// Package mobileapi serves the customer and technician apps (and machine
// customers creating requests). A handler binds, calls one service method and
// encodes.
package mobileapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/live"
	"github.com/onsite/onsite/signin"
	"github.com/onsite/onsite/technicians"
)

// Handler holds what the app routes call.
type Handler struct {
	techs     *technicians.Service
	dispatch  *dispatch.Service
	hub       *live.Hub
	signin    SignIn
	pings     *technicians.PingBuffer
	shareKey  []byte // signs tracking links
	publicURL string
}

// New returns the app handler; hub serves and feeds the live streams, pings
// takes position reports, shareKey signs tracking links under publicURL.
func New(techs *technicians.Service, d *dispatch.Service, hub *live.Hub, si SignIn, pings *technicians.PingBuffer, shareKey []byte, publicURL string) *Handler {
	return &Handler{techs: techs, dispatch: d, hub: hub, signin: si, pings: pings, shareKey: shareKey, publicURL: publicURL}
}

// technicianChanged pushes a technician to the dashboard's stream (best
// effort: the database already holds the change).
func (h *Handler) technicianChanged(c echo.Context, t technicians.Technician) {
	if h.hub == nil {
		return
	}
	if err := h.hub.Publish(c.Request().Context(), "technician", t, live.TopicOps); err != nil {
		c.Logger().Warn(err)
	}
}

func (h *Handler) myStream(c echo.Context) error {
	return h.hub.Serve(c.Response(), c.Request(), live.TechnicianTopic(httpx.Principal(c).Subject))
}

func (h *Handler) requestStream(c echo.Context) error {
	r, err := h.dispatch.Get(c.Request().Context(), caller(c), c.Param("id"))
	if err != nil {
		return err
	}
	return h.hub.ServeStream(c.Response(), c.Request(), live.RequestTopic(r.ID), live.StreamOptions{Ends: requestEnded})
}

// requestEnded ends a request's stream once an update says it is closed
// (completed, cancelled, unfulfilled, no-show): its state is the reason.
func requestEnded(event, data string) string {
	if event != "request" {
		return ""
	}
	var r struct {
		State dispatch.State `json:"state"`
	}
	if json.Unmarshal([]byte(data), &r) != nil || r.State == "" || r.State.Open() {
		return ""
	}
	return string(r.State)
}

func caller(c echo.Context) dispatch.Caller {
	p := httpx.Principal(c)
	return dispatch.Caller{Role: string(p.Role), Subject: p.Subject, AutoConfirm: p.AutoConfirm}
}

type dutyBody struct {
	Status string `json:"status"`
}

func (h *Handler) setDuty(c echo.Context) error {
	var in dutyBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	t, err := h.techs.SetDuty(c.Request().Context(), httpx.Principal(c).Subject, in.Status)
	if err != nil {
		return err
	}
	h.technicianChanged(c, t)
	return c.JSON(http.StatusOK, t)
}

// meBody is what a technician may change of their own profile: the
// language of their texts and app. Capacity, radius and travel are ops'.
type meBody struct {
	Locale *string `json:"locale"`
}

func (h *Handler) updateMe(c echo.Context) error {
	var in meBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	if in.Locale == nil {
		return errs.InvalidField("locale", "locale is required")
	}
	t, err := h.techs.Update(c.Request().Context(), httpx.Principal(c).Subject, technicians.Changes{Locale: in.Locale})
	if err != nil {
		return err
	}
	h.technicianChanged(c, t)
	return c.JSON(http.StatusOK, t)
}

func (h *Handler) me(c echo.Context) error {
	t, err := h.techs.Get(c.Request().Context(), httpx.Principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (h *Handler) location(c echo.Context) error {
	var in technicians.Ping
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.pings.Add(httpx.Principal(c).Subject, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

type pingsBody struct {
	Pings []technicians.Ping `json:"pings"`
}

func (h *Handler) locations(c echo.Context) error {
	var in pingsBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.pings.Add(httpx.Principal(c).Subject, in.Pings...)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) createRequest(c echo.Context) error {
	var in dispatch.NewRequest
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.dispatch.Create(c.Request().Context(), caller(c), c.Request().Header.Get("Idempotency-Key"), in)
	if err != nil {
		return err
	}
	if out.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	if out.Attached {
		return c.JSON(http.StatusOK, out.Request) // the fault joined the device's open request
	}
	return c.JSON(http.StatusCreated, out.Request)
}

func (h *Handler) getRequest(c echo.Context) error {
	r, err := h.dispatch.View(c.Request().Context(), caller(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) cancelRequest(c echo.Context) error {
	var in dispatch.CancelInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Cancel(c.Request().Context(), caller(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) myOffers(c echo.Context) error {
	offers, err := h.dispatch.MyOffers(c.Request().Context(), httpx.Principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(offers))
}

func (h *Handler) myJobs(c echo.Context) error {
	limit, err := httpx.QueryInt(c, "limit", 100, 1, 500)
	if err != nil {
		return err
	}
	jobs, err := h.dispatch.MyJobs(c.Request().Context(), httpx.Principal(c).Subject, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(jobs))
}

func (h *Handler) accept(c echo.Context) error {
	r, err := h.dispatch.Accept(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) decline(c echo.Context) error {
	o, err := h.dispatch.Decline(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

func (h *Handler) enRoute(c echo.Context) error {
	r, err := h.dispatch.Depart(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) arrived(c echo.Context) error {
	// The arrival is measured against the latest stored position: write a
	// ping this process still holds first (the app often reports its
	// position just before saying it has arrived).
	if err := h.pings.Flush(c.Request().Context()); err != nil {
		return err
	}
	r, err := h.dispatch.Arrive(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

type completeBody struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

func (h *Handler) complete(c echo.Context) error {
	var in completeBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Complete(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), dispatch.JobStep{Outcome: in.Outcome, Reason: in.Reason})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

type dropBody struct {
	Reason string `json:"reason"`
}

func (h *Handler) drop(c echo.Context) error {
	var in dropBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Drop(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), dispatch.JobStep{Reason: in.Reason})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// SignIn is the phone sign-in the auth routes call, and the proving of a
// customer's contact phones.
type SignIn interface {
	SendCode(ctx context.Context, phone, role, ip string) (signin.CodeSent, error)
	Verify(ctx context.Context, phone, role, code string) (signin.Tokens, error)
	Refresh(ctx context.Context, token string) (signin.Tokens, error)
	SignOut(ctx context.Context, token string) error
	SendContactCode(ctx context.Context, customerID, phone string) (signin.Contact, error)
	ConfirmContact(ctx context.Context, customerID, phone, code string) (signin.Contact, error)
	Contacts(ctx context.Context, customerID string) ([]signin.Contact, error)
}

type contactBody struct {
	Phone string `json:"phone"`
}

// addContact texts a code to a phone the customer wants texts at (202), or
// answers 200 when the phone is proved already.
func (h *Handler) addContact(c echo.Context) error {
	var in contactBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.signin.SendContactCode(c.Request().Context(), httpx.Principal(c).Subject, in.Phone)
	if err != nil {
		return err
	}
	if out.Confirmed {
		return c.JSON(http.StatusOK, out)
	}
	return c.JSON(http.StatusAccepted, out)
}

type confirmContactBody struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
}

func (h *Handler) confirmContact(c echo.Context) error {
	var in confirmContactBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.signin.ConfirmContact(c.Request().Context(), httpx.Principal(c).Subject, in.Phone, in.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) contacts(c echo.Context) error {
	out, err := h.signin.Contacts(c.Request().Context(), httpx.Principal(c).Subject)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(out))
}

type otpBody struct {
	Phone string `json:"phone"`
	Role  string `json:"role"`
}

func (h *Handler) sendCode(c echo.Context) error {
	var in otpBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.signin.SendCode(c.Request().Context(), in.Phone, in.Role, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, out)
}

type tokenBody struct {
	Phone string `json:"phone"`
	Role  string `json:"role"`
	Code  string `json:"code"`
}

func (h *Handler) verifyCode(c echo.Context) error {
	var in tokenBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.signin.Verify(c.Request().Context(), in.Phone, in.Role, in.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (h *Handler) signOut(c echo.Context) error {
	var in refreshBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	if err := h.signin.SignOut(c.Request().Context(), in.RefreshToken); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) refresh(c echo.Context) error {
	var in refreshBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.signin.Refresh(c.Request().Context(), in.RefreshToken)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) myRequests(c echo.Context) error {
	limit, offset, err := httpx.QueryPage(c, 50)
	if err != nil {
		return err
	}
	list, err := h.dispatch.List(c.Request().Context(), dispatch.ListFilter{CustomerID: httpx.Principal(c).Subject, Limit: limit, Offset: offset})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(list))
}

func (h *Handler) rate(c echo.Context) error {
	var in dispatch.RatingInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Rate(c.Request().Context(), caller(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) share(c echo.Context) error {
	link, err := h.dispatch.Share(c.Request().Context(), caller(c), c.Param("id"), h.shareKey, h.publicURL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, link)
}

func (h *Handler) tracked(c echo.Context) error {
	v, err := h.dispatch.Tracked(c.Request().Context(), h.shareKey, c.Param("token"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (h *Handler) trackedStream(c echo.Context) error {
	v, err := h.dispatch.Tracked(c.Request().Context(), h.shareKey, c.Param("token"))
	if err != nil {
		return err
	}
	// The link is checked again on every reconnect; an open stream ends when
	// the link expires.
	return h.hub.ServeStream(c.Response(), c.Request(), live.RequestTopic(v.ID),
		live.StreamOptions{Redact: true, Until: v.LinkExpires, Ends: requestEnded})
}

// trackPage is the status page a tracking link opens: it reads the request
// and follows its stream, with no account.
const trackPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Onsite – your request</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1d2733}
h1{font-size:1.4rem}.state{font-size:1.8rem;font-weight:600;margin:.5rem 0}.muted{color:#5b6b7b}</style></head>
<body><h1>Your Onsite request</h1><div class="state" id="state">…</div><div id="detail" class="muted"></div>
<script>
const token = location.pathname.split('/').pop();
const labels = {scheduled:'Scheduled', searching:'Finding a technician', assigned:'Technician assigned', en_route:'On the way', on_site:'Technician on site'};
async function load() {
  const r = await fetch('/v1/track/' + token);
  if (!r.ok) { document.getElementById('state').textContent = 'This link has ended.'; document.getElementById('detail').textContent=''; return false; }
  const v = await r.json();
  document.getElementById('state').textContent = labels[v.state] || v.state;
  const parts = [];
  if (v.technician) parts.push(v.technician.first_name + (v.technician.rating ? ' (' + v.technician.rating.toFixed(1) + '★)' : ''));
  if (v.eta_at) parts.push('arriving around ' + new Date(v.eta_at).toLocaleTimeString([], {hour:'2-digit', minute:'2-digit'}));
  if (v.expected_wait) parts.push('expected wait about ' + v.expected_wait.minutes + ' min');
  document.getElementById('detail').textContent = parts.join(' · ');
  return true;
}
load().then(ok => { if (ok) { const es = new EventSource('/v1/track/' + token + '/stream'); es.addEventListener('request', load); es.addEventListener('end', () => { es.close(); load(); }); } });
</script></body></html>`

func (h *Handler) trackedPage(c echo.Context) error {
	return c.HTML(http.StatusOK, trackPage)
}

func (h *Handler) confirm(c echo.Context) error {
	var in dispatch.ConfirmInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Confirm(c.Request().Context(), caller(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) confirmByLink(c echo.Context) error {
	r, err := h.dispatch.ConfirmByLink(c.Request().Context(), h.shareKey, c.Param("token"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// confirmPage is what the owner's SMS link opens: one button that confirms.
const confirmPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Onsite – confirm</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1d2733}
button{font-size:1.1rem;padding:.7rem 1.2rem;border:0;border-radius:.4rem;background:#1f5fd6;color:#fff}</style></head>
<body><h1>Send a technician?</h1><p>Your device reported a problem. Confirm and Onsite sends a technician as soon as possible.</p>
<button id="go">Yes, send someone</button><p id="msg"></p>
<script>
document.getElementById('go').onclick = async () => {
  const r = await fetch('/v1/confirm/' + location.pathname.split('/').pop(), {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
  document.getElementById('msg').textContent = r.ok ? 'Confirmed: we are finding a technician.' : 'This link is not valid any more.';
  document.getElementById('go').disabled = true;
};
</script></body></html>`

func (h *Handler) confirmPage(c echo.Context) error {
	return c.HTML(http.StatusOK, confirmPage)
}

func (h *Handler) rateByLink(c echo.Context) error {
	var in dispatch.RatingInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.RateByLink(c.Request().Context(), h.shareKey, c.Param("token"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": r.ID, "state": r.State, "rating_stars": r.RatingStars})
}

// ratePage is what the "job done" SMS link opens: one to five stars and an
// optional comment, sent once.
const ratePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Onsite – rate your visit</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1d2733}
.stars button{font-size:2rem;background:none;border:0;cursor:pointer;color:#b8c0cc}.stars button.on{color:#f2a900}
textarea{width:100%;min-height:5rem;font:inherit}
#send{font-size:1.1rem;padding:.7rem 1.2rem;border:0;border-radius:.4rem;background:#1f5fd6;color:#fff}</style></head>
<body><h1>How did it go?</h1><p>Rate the visit from one to five stars.</p>
<div class="stars" role="radiogroup" aria-label="Stars"></div>
<p><label for="comment">Anything to add (optional)</label><br><textarea id="comment" maxlength="1000"></textarea></p>
<button id="send" disabled>Send rating</button><p id="msg" role="status"></p>
<script>
let stars = 0;
const box = document.querySelector('.stars'), send = document.getElementById('send'), msg = document.getElementById('msg');
for (let i = 1; i <= 5; i++) {
  const b = document.createElement('button');
  b.textContent = '★'; b.setAttribute('aria-label', i + (i === 1 ? ' star' : ' stars')); b.setAttribute('role', 'radio');
  b.onclick = () => { stars = i; send.disabled = false; box.querySelectorAll('button').forEach((x, k) => { x.classList.toggle('on', k < i); x.setAttribute('aria-checked', k === i - 1); }); };
  box.appendChild(b);
}
send.onclick = async () => {
  send.disabled = true;
  const r = await fetch('/v1/rate/' + location.pathname.split('/').pop(), {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({stars, comment: document.getElementById('comment').value})});
  const body = await r.json().catch(() => ({}));
  msg.textContent = r.ok ? 'Thank you for your rating.' : (body.error && body.error.reason === 'already_rated' ? 'This visit was rated already. Thank you.' : 'This link is not valid any more.');
};
</script></body></html>`

func (h *Handler) ratePage(c echo.Context) error {
	return c.HTML(http.StatusOK, ratePage)
}

func (h *Handler) notHome(c echo.Context) error {
	var in dispatch.NotHomeInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.NotHome(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) customerHome(c echo.Context) error {
	r, err := h.dispatch.CustomerHome(c.Request().Context(), caller(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) handBack(c echo.Context) error {
	var in dispatch.HandBackInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.HandBack(c.Request().Context(), httpx.Principal(c).Subject, c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) reschedule(c echo.Context) error {
	var in dispatch.RescheduleInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.Reschedule(c.Request().Context(), caller(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
