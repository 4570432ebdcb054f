package dispatch

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/dispatch/match"
	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/technicians"
)

// RequestView is a request as the customer app shows it.
type RequestView struct {
	Request
	Technician   *TechnicianBrief `json:"technician"`
	ExpectedWait *Wait            `json:"expected_wait"`
	LinkExpires  time.Time        `json:"-"` // for a tracking link: when it ends
}

// TechnicianBrief is what a customer sees of their technician: a first name,
// a rating, and a position only while they are on the way.
type TechnicianBrief struct {
	FirstName string     `json:"first_name"`
	Rating    float64    `json:"rating"`
	Position  *geo.Point `json:"position"`
}

// Wait is an honest expected wait while a request searches, and what it is
// based on.
type Wait struct {
	Minutes             int `json:"minutes"`
	AheadInQueue        int `json:"ahead_in_queue"`        // searching requests for the same skill nearby, older than this one
	FreeTechniciansNear int `json:"free_technicians_near"` // certified, on duty with room for a job (one deciding on an offer, this one's too, counts)
	BusyTechniciansNear int `json:"busy_technicians_near"` // certified, on a job nearby
	BeingAsked          int `json:"being_asked"`           // technicians deciding on an offer of this request now
	// BasedOn names the inputs Minutes was worked out from, in the order
	// they add up (the Wait* constants).
	BasedOn []string `json:"based_on"`
}

// What an expected wait can be based on (Wait.BasedOn).
const (
	WaitAskedETA   = "asked_technician_eta" // the drive of the technician being asked now
	WaitFreeETA    = "free_technician_eta"  // the arrival of the free technician this request would get
	WaitQueueAhead = "queue_ahead"          // the requests ahead take the free (or busy) technicians first
	WaitAnswerTime = "answer_time"          // a typical answer to an offer (what is left of it while one is pending)
	WaitBusyFinish = "busy_technicians"     // busy technicians finishing their jobs (about an hour, shared), then travel
	WaitSLA        = "sla"                  // nobody nearby: the promise, while the search widens
)

// waitRadiusKm is "nearby" for the expected wait.
const waitRadiusKm = 15

// answerDelay is how long people typically take to answer an offer.
const answerDelay = 2 * time.Minute

// View returns what the customer app shows of a request.
func (s *Service) View(ctx context.Context, c Caller, id string) (RequestView, error) {
	now := s.now()
	r, pending, err := loadWithPending(s.db.WithContext(ctx), id, now)
	if err != nil {
		return RequestView{}, err
	}
	if !mayRead(c, r) {
		return RequestView{}, errs.NotFoundf("request %s not found", id)
	}
	v := RequestView{Request: r}
	q := s.db.WithContext(ctx)
	if r.TechnicianID != nil {
		var t technicians.Technician
		if err := q.Select("id", "name", "rating", "lat", "lng").Where("id = ?", *r.TechnicianID).First(&t).Error; err != nil {
			return v, fmt.Errorf("load technician: %w", err)
		}
		b := &TechnicianBrief{FirstName: firstName(t.Name), Rating: t.Rating}
		if p, ok := t.Position(); ok && r.State == EnRoute {
			b.Position = &p
		}
		v.Technician = b
	}
	if r.State == Searching {
		w, err := s.expectedWait(ctx, r, pending, now)
		if err != nil {
			return v, err
		}
		v.ExpectedWait = &w
	}
	return v, nil
}

// viewRow is a request beside one of its pending offers (nil when it has
// none).
type viewRow struct {
	Request
	PendingEtaSeconds *int
	PendingCreatedAt  *time.Time
}

// loadWithPending reads a request and its offers pending and unexpired at
// now in one statement: the customer app polls this, so it is one round
// trip.
func loadWithPending(tx *gorm.DB, id string, now time.Time) (Request, []Offer, error) {
	var rows []viewRow
	err := tx.Raw(`SELECT r.*, o.eta_seconds AS pending_eta_seconds, o.created_at AS pending_created_at FROM requests r
		LEFT JOIN offers o ON o.request_id = r.id AND o.state = ? AND o.expires_at > ?
		WHERE r.id = ?`, OfferPending, now, id).Scan(&rows).Error
	if err != nil {
		return Request{}, nil, fmt.Errorf("load request %s: %w", id, err)
	}
	if len(rows) == 0 {
		return Request{}, nil, errs.NotFoundf("request %s not found", id)
	}
	var pending []Offer
	for _, row := range rows {
		if row.PendingEtaSeconds != nil && row.PendingCreatedAt != nil {
			pending = append(pending, Offer{EtaSeconds: *row.PendingEtaSeconds, CreatedAt: *row.PendingCreatedAt})
		}
	}
	return rows[0].Request, pending, nil
}

func firstName(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	return name
}

// waitFresh is how long the index's part of an expected wait is reused for
// requests of the same skill in the same cell: a customer app polls.
const waitFresh = 5 * time.Second

// waitKey and cachedWait cache what the index says around a cell.
type waitKey struct {
	cell  geo.Cell
	skill string
}

type cachedWait struct {
	at     time.Time
	around match.Around
	etas   []time.Duration // of the free technicians not deciding, soonest first
}

// maxWaitRanks is how many arrivals the cache keeps per cell and skill.
const maxWaitRanks = 32

// expectedWait: a technician being asked right now is the honest answer
// (their drive plus the rest of a typical answer); otherwise, if there are
// more free technicians nearby than requests ahead, the arrival of the one
// this request would get plus an answer delay; otherwise it waits for busy
// technicians to finish (a job lasts about an hour, shared by the busy ones)
// and then travels. Everything but the pending offer comes from the live
// index, cached per cell and skill for a few seconds; the pending offers
// (unexpired at now) are read with the request.
func (s *Service) expectedWait(ctx context.Context, r Request, pending []Offer, now time.Time) (Wait, error) {
	var w Wait
	around, etas, err := s.fleet.around(ctx, s, r, now)
	if err != nil {
		return w, err
	}
	w.AheadInQueue = s.fleet.ahead(r, waitRadiusKm)
	w.FreeTechniciansNear, w.BusyTechniciansNear, w.BeingAsked = around.Free, around.Busy, len(pending)
	var d time.Duration
	switch {
	case len(pending) > 0:
		w.BasedOn = []string{WaitAskedETA, WaitAnswerTime}
		best := time.Duration(math.MaxInt64)
		for _, o := range pending {
			left := time.Duration(o.EtaSeconds)*time.Second + max(answerDelay-now.Sub(o.CreatedAt), 0)
			best = min(best, left)
		}
		d = best
	case len(etas) > w.AheadInQueue:
		w.BasedOn = []string{WaitFreeETA, WaitQueueAhead, WaitAnswerTime}
		d = etas[w.AheadInQueue] + answerDelay
	case around.Busy > 0:
		w.BasedOn = []string{WaitBusyFinish, WaitQueueAhead}
		short := w.AheadInQueue + 1 - len(etas)
		d = time.Duration(float64(time.Hour)*float64(short)/float64(around.Busy)) + 15*time.Minute
	default:
		w.BasedOn = []string{WaitSLA}
		d = s.cfg.SLA // nobody nearby: say the honest thing, the search is widening
	}
	w.Minutes = max(int((d+time.Minute-1)/time.Minute), 1)
	return w, nil
}

// around is the index's view of a request's cell and skill: the counts and
// the arrivals of the free technicians, reused for waitFresh.
func (f *Fleet) around(ctx context.Context, s *Service, r Request, now time.Time) (match.Around, []time.Duration, error) {
	key := waitKey{r.Cell, r.SkillCode}
	f.waitMu.RLock()
	c, ok := f.waits[key]
	f.waitMu.RUnlock()
	if ok && now.Sub(c.at) < waitFresh && !now.Before(c.at) {
		return c.around, c.etas, nil
	}
	pool, err := s.index(ctx)
	if err != nil {
		return match.Around{}, nil, err
	}
	place := r.Cell.Center()
	c = cachedWait{at: now, around: pool.Around(place, r.SkillCode, waitRadiusKm, now)}
	job := match.Job{Skill: r.SkillCode, Place: place, Length: s.cfg.JobLength} // a booked technician counts if the job fits before their window
	for _, sc := range pool.Search(job, maxWaitRanks, waitRadiusKm, nil, s.cfg.ETA, now) {
		c.etas = append(c.etas, sc.ETA)
	}
	f.waitMu.Lock()
	if len(f.waits) > 100_000 {
		f.waits = map[waitKey]cachedWait{} // a crude bound; entries are cheap to remake
	}
	f.waits[key] = c
	f.waitMu.Unlock()
	return c.around, c.etas, nil
}

// ahead counts the searching requests for the same skill within km of r
// that are older than it.
func (f *Fleet) ahead(r Request, km float64) int {
	f.waitMu.RLock()
	defer f.waitMu.RUnlock()
	n := 0
	place := r.Place()
	for id, w := range f.waiting {
		if id != r.ID && w.skill == r.SkillCode && w.created.Before(r.CreatedAt) && geo.DistanceM(w.place, place) <= km*1000 {
			n++
		}
	}
	return n
}

// RatingInput is a customer's rating of a finished job.
type RatingInput struct {
	Stars   int    `json:"stars"`
	Comment string `json:"comment"`
}

// Rate records the customer's rating of a completed request, once, and
// folds it into the technician's average.
func (s *Service) Rate(ctx context.Context, c Caller, id string, in RatingInput) (Request, error) {
	if in.Stars < 1 || in.Stars > 5 {
		return Request{}, errs.InvalidField("stars", "stars must be from 1 to 5")
	}
	comment := strings.TrimSpace(in.Comment)
	if len(comment) > 1000 {
		return Request{}, errs.InvalidField("comment", "comment is longer than 1000 characters")
	}
	return s.change(ctx, id, "rate", func(tx *gorm.DB, r *Request, now time.Time) error {
		if !mayRead(c, *r) || (c.Role != "customer" && c.Role != "machine") {
			return errNotFound("request", id)
		}
		if r.State != Completed || r.TechnicianID == nil {
			return errs.ConflictReason("not_completed", "only a completed job can be rated")
		}
		res := tx.Model(&Request{}).Where("id = ? AND rated_at IS NULL", r.ID).
			Updates(map[string]any{"rating_stars": in.Stars, "rating_comment": comment, "rated_at": now, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("rate: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errs.ConflictReason("already_rated", "this job was already rated")
		}
		if err := tx.Model(&technicians.Technician{}).Where("id = ?", *r.TechnicianID).Updates(map[string]any{
			"rating":       gorm.Expr("(rating * rating_count + ?) / (rating_count + 1)", float64(in.Stars)),
			"rating_count": gorm.Expr("rating_count + 1"),
		}).Error; err != nil {
			return fmt.Errorf("update technician rating: %w", err)
		}
		if err := technicians.Changed(tx, *r.TechnicianID); err != nil {
			return err
		}
		if err := appendEvent(tx, r.ID, "rated", c.actor(), map[string]any{"stars": in.Stars}, now); err != nil {
			return err
		}
		fresh, err := load(tx, r.ID)
		*r = fresh
		return err
	})
}
