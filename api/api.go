// Package api serves the ops dashboard's HTTP routes. A handler binds, calls one service method and encodes.
package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/live"
	"github.com/onsite/onsite/technicians"
)

// Handler holds what the ops routes call.
type Handler struct {
	techs     *technicians.Service
	dispatch  *dispatch.Service
	pub       Publisher
	trackKey  []byte // signs the tracking links of requests taken by intake
	publicURL string
}

// WithTrackLinks sets what intake's tracking links are signed with and
// where they point (the key and URL the customer app's links use).
func (h *Handler) WithTrackLinks(key []byte, publicURL string) *Handler {
	h.trackKey, h.publicURL = key, publicURL
	return h
}

// New returns the ops handler; pub carries technician changes to the live
// streams.
func New(techs *technicians.Service, d *dispatch.Service, pub Publisher) *Handler {
	return &Handler{techs: techs, dispatch: d, pub: pub}
}

// technicianChanged answers with the technician and pushes it to the
// dashboard's stream (best effort: the database already holds the change).
func (h *Handler) technicianChanged(c echo.Context, status int, id string) error {
	t, err := h.techs.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if h.pub != nil {
		if err := h.pub.Publish(c.Request().Context(), "technician", t, live.TopicOps); err != nil {
			c.Logger().Warn(err)
		}
	}
	return c.JSON(status, t)
}

type newSkill struct {
	Code  string            `json:"code"`
	Name  string            `json:"name"`
	Names technicians.Names `json:"names"`
}

func (h *Handler) createSkill(c echo.Context) error {
	var in newSkill
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	sk, err := h.techs.AddSkill(c.Request().Context(), technicians.Skill{Code: in.Code, Name: in.Name, Names: in.Names})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, sk)
}

func (h *Handler) updateSkill(c echo.Context) error {
	var in technicians.SkillUpdate
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	sk, err := h.techs.UpdateSkill(c.Request().Context(), c.Param("code"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sk)
}

func (h *Handler) listSkills(c echo.Context) error {
	skills, err := h.techs.ListSkills(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(skills))
}

func (h *Handler) createTechnician(c echo.Context) error {
	var in technicians.NewTechnician
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	t, err := h.techs.Create(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return h.technicianChanged(c, http.StatusCreated, t.ID)
}

func (h *Handler) listTechnicians(c echo.Context) error {
	limit, offset, err := httpx.QueryPage(c, 100)
	if err != nil {
		return err
	}
	list, err := h.techs.List(c.Request().Context(), technicians.Filter{
		DutyStatus: c.QueryParam("status"), Skill: c.QueryParam("skill"), Query: c.QueryParam("q"),
		Limit: limit, Offset: offset,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(list))
}

func (h *Handler) getTechnician(c echo.Context) error {
	t, err := h.techs.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (h *Handler) updateTechnician(c echo.Context) error {
	var in technicians.Changes
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	t, err := h.techs.Update(c.Request().Context(), c.Param("id"), in)
	if err != nil {
		return err
	}
	return h.technicianChanged(c, http.StatusOK, t.ID)
}

type certifyBody struct {
	CertifiedAt *time.Time `json:"certified_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

func (h *Handler) certify(c echo.Context) error {
	var in certifyBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	if in.ExpiresAt == nil {
		return errs.InvalidField("expires_at", "expires_at is required")
	}
	cert, err := h.techs.Certify(c.Request().Context(), c.Param("id"), c.Param("skill"), in.CertifiedAt, *in.ExpiresAt)
	if err != nil {
		return err
	}
	if t, err := h.techs.Get(c.Request().Context(), c.Param("id")); err == nil && h.pub != nil {
		_ = h.pub.Publish(c.Request().Context(), "technician", t, live.TopicOps)
	}
	return c.JSON(http.StatusOK, cert)
}

func (h *Handler) revoke(c echo.Context) error {
	if err := h.techs.Revoke(c.Request().Context(), c.Param("id"), c.Param("skill")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type shiftsBody struct {
	Shifts *[]technicians.ShiftInput `json:"shifts"`
}

func (h *Handler) setShifts(c echo.Context) error {
	var in shiftsBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	if in.Shifts == nil {
		return errs.InvalidField("shifts", "shifts is required (an empty list removes every shift)")
	}
	t, err := h.techs.SetShifts(c.Request().Context(), c.Param("id"), *in.Shifts)
	if err != nil {
		return err
	}
	return h.technicianChanged(c, http.StatusOK, t.ID)
}

type weeklyBody struct {
	Weekly *[]technicians.WeeklyInput `json:"weekly"`
}

func (h *Handler) setWeekly(c echo.Context) error {
	var in weeklyBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	if in.Weekly == nil {
		return errs.InvalidField("weekly", "weekly is required (an empty list removes every weekly shift and break)")
	}
	t, err := h.techs.SetWeekly(c.Request().Context(), c.Param("id"), *in.Weekly)
	if err != nil {
		return err
	}
	return h.technicianChanged(c, http.StatusOK, t.ID)
}

type suspendBody struct {
	Suspended *bool `json:"suspended"`
}

func (h *Handler) suspend(c echo.Context) error {
	var in suspendBody
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	if in.Suspended == nil {
		return errs.InvalidField("suspended", "suspended is required")
	}
	t, err := h.techs.Suspend(c.Request().Context(), c.Param("id"), *in.Suspended)
	if err != nil {
		return err
	}
	return h.technicianChanged(c, http.StatusOK, t.ID)
}

func (h *Handler) listRequests(c echo.Context) error {
	states, err := dispatch.ParseStates(c.QueryParam("state"))
	if err != nil {
		return err
	}
	limit, offset, err := httpx.QueryPage(c, 100)
	if err != nil {
		return err
	}
	list, err := h.dispatch.List(c.Request().Context(), dispatch.ListFilter{States: states, Limit: limit, Offset: offset})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(list))
}

func (h *Handler) requestEvents(c echo.Context) error {
	evs, err := h.dispatch.Events(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(evs))
}

func caller(c echo.Context) dispatch.Caller {
	p := httpx.Principal(c)
	return dispatch.Caller{Role: string(p.Role), Subject: p.Subject}
}

func (h *Handler) assign(c echo.Context) error {
	var in dispatch.AssignInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	r, err := h.dispatch.AssignByHand(c.Request().Context(), caller(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) redispatch(c echo.Context) error {
	r, err := h.dispatch.Redispatch(c.Request().Context(), caller(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h *Handler) requestOffers(c echo.Context) error {
	offers, err := h.dispatch.OffersOf(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(offers))
}

func (h *Handler) candidates(c echo.Context) error {
	limit, err := httpx.QueryInt(c, "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	list, err := h.dispatch.Candidates(c.Request().Context(), c.Param("id"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, httpx.List(list))
}

// kpiParams are the query parameters GET /v1/kpis understands; any other
// is refused rather than ignored.
var kpiParams = []string{"from", "to", "cell", "area", "skill", "technician", "hour", "group_by"}

func (h *Handler) kpis(c echo.Context) error {
	for name := range c.QueryParams() {
		if !slices.Contains(kpiParams, name) {
			return errs.InvalidField(name, "unknown parameter %q (known: %s)", name, strings.Join(kpiParams, ", "))
		}
	}
	now := time.Now().UTC()
	to, err := httpx.QueryTime(c, "to", now)
	if err != nil {
		return err
	}
	from, err := httpx.QueryTime(c, "from", to.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	f := dispatch.KPIFilter{From: from, To: to, Area: c.QueryParam("area"), Skill: c.QueryParam("skill"),
		Technician: c.QueryParam("technician"), GroupBy: c.QueryParam("group_by")}
	if s := c.QueryParam("cell"); s != "" {
		cell, ok := geo.ParseCell(s)
		if !ok {
			return errs.InvalidField("cell", "cell must be an H3 cell such as 871f8d7a5ffffff")
		}
		f.Cell = &cell
	}
	if c.QueryParam("hour") != "" {
		hour, err := httpx.QueryInt(c, "hour", 0, 0, 23)
		if err != nil {
			return err
		}
		f.Hour = &hour
	}
	k, err := h.dispatch.KPIs(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (h *Handler) intake(c echo.Context) error {
	var in dispatch.IntakeInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	out, err := h.dispatch.Intake(c.Request().Context(), caller(c), in, h.trackKey, h.publicURL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}
