package dispatch

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/technicians"
)

// candidateRow is what the candidate query reads per technician.
type candidateRow struct {
	ID             string
	Lat            float64
	Lng            float64
	TravelMode     string
	SpeedKmh       float64
	RadiusKm       float64
	ActiveJobs     int
	Capacity       int
	Rating         float64
	IdleSince      *time.Time
	OffersSent     int
	OffersAccepted int
	Deciding       bool
	CertifiedAt    time.Time
	ExpiresAt      time.Time
}

// ringSteps are the ring distances at which the search queries the database:
// close rings first, wider bands only when too few candidates were found.
var ringSteps = []int{1, 3, 6, 10, 16, 25, 40, 60, 90, 140}

// searchCandidates finds eligible technicians for r from the database,
// widening ring by ring (H3 res 8 cells, indexed column) until it has want
// candidates or the rings lie beyond reachKm. It returns them ranked.
func (s *Service) searchCandidates(tx *gorm.DB, r Request, want int, reachKm float64, now time.Time) ([]Scored, error) {
	job := jobOf(r)
	excluded, err := excludedFor(tx, r.ID, now)
	if err != nil {
		return nil, err
	}
	origin := r.Cell
	maxK := geo.MaxRing(geo.CityResolution, reachKm)
	var cands []Candidate
	prevK := -1
	for _, k := range append(ringSteps, maxK) {
		if k > maxK {
			k = maxK
		}
		if k <= prevK {
			continue
		}
		var cells []geo.Cell
		for ring := prevK + 1; ring <= k; ring++ {
			cells = append(cells, geo.Ring(origin, ring)...)
		}
		prevK = k
		found, err := loadCandidates(tx, r.SkillCode, cells, excluded, now)
		if err != nil {
			return nil, err
		}
		cands = append(cands, found...)
		ranked := Rank(job, cands, s.cfg.ETA, now)
		if len(ranked) >= want || k >= maxK {
			return ranked, nil
		}
	}
	return Rank(job, cands, s.cfg.ETA, now), nil
}

func jobOf(r Request) Job {
	j := Job{ID: r.ID, Skill: r.SkillCode, Place: r.Place()}
	if r.SLADeadline != nil {
		j.Deadline = *r.SLADeadline
	}
	if r.GiveUpAt != nil {
		j.GiveUp = *r.GiveUpAt
	}
	if r.WindowStart != nil {
		j.Opens = *r.WindowStart
	}
	return j
}

// excludedFor returns the technicians not to offer r to now: those who
// declined it or dropped it, those with an offer for it still pending, and
// those whose offer expired in the last 10 minutes.
func excludedFor(tx *gorm.DB, requestID string, now time.Time) (map[string]bool, error) {
	var ids []string
	err := tx.Raw(`SELECT technician_id FROM offers WHERE request_id = ? AND (state IN ('declined', 'pending') OR (state = 'expired' AND answered_at > ?))
		UNION SELECT technician_id FROM assignments WHERE request_id = ? AND end_reason = 'dropped'`,
		requestID, now.Add(-10*time.Minute), requestID).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("load exclusions for %s: %w", requestID, err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// loadCandidates reads the technicians in cells that hold a current
// certification for skill and are on duty with free capacity, with their
// shifts and whether they are deciding on another offer (the apps show one
// offer at a time).
func loadCandidates(tx *gorm.DB, skill string, cells []geo.Cell, excluded map[string]bool, now time.Time) ([]Candidate, error) {
	if len(cells) == 0 {
		return nil, nil
	}
	var rows []candidateRow
	err := tx.Raw(`SELECT t.id, t.lat, t.lng, t.travel_mode, t.speed_kmh, t.radius_km, t.active_jobs, t.capacity,
			t.rating, t.idle_since, t.offers_sent, t.offers_accepted, c.certified_at, c.expires_at,
			EXISTS (SELECT 1 FROM offers o WHERE o.technician_id = t.id AND o.state = 'pending' AND o.expires_at > ?) AS deciding
		FROM technicians t JOIN certifications c ON c.technician_id = t.id AND c.skill_code = ?
		WHERE t.cell IN ? AND t.duty_status = ? AND t.suspended = ? AND t.active_jobs < t.capacity
		  AND c.certified_at <= ? AND c.expires_at > ?`,
		now, skill, cells, technicians.Available, false, now, now).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("search candidates: %w", err)
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	shifts, err := shiftsOf(tx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Candidate, 0, len(rows))
	for _, r := range rows {
		c := Candidate{
			TechnicianID: r.ID, Position: geo.Point{Lat: r.Lat, Lng: r.Lng}, HasPosition: true,
			Traveller: geo.Traveller{Mode: r.TravelMode, SpeedKmh: r.SpeedKmh}, RadiusKm: r.RadiusKm,
			Certs: map[string]Interval{skill: {Start: r.CertifiedAt, End: r.ExpiresAt}}, Available: true,
			ActiveJobs: r.ActiveJobs, Capacity: r.Capacity, Shifts: shifts[r.ID], Rating: r.Rating,
			OffersSent: r.OffersSent, Accepted: r.OffersAccepted, Excluded: excluded[r.ID], Deciding: r.Deciding,
		}
		if r.IdleSince != nil {
			c.IdleSince = *r.IdleSince
		}
		out = append(out, c)
	}
	return out, nil
}

func shiftsOf(tx *gorm.DB, ids []string) (map[string][]Interval, error) {
	out := map[string][]Interval{}
	if len(ids) == 0 {
		return out, nil
	}
	var shifts []technicians.Shift
	if err := tx.Where("technician_id IN ?", ids).Find(&shifts).Error; err != nil {
		return nil, fmt.Errorf("load shifts: %w", err)
	}
	for _, sh := range shifts {
		out[sh.TechnicianID] = append(out[sh.TechnicianID], Interval{Start: sh.StartsAt, End: sh.EndsAt})
	}
	return out, nil
}

// pendingOffers counts the pending offers of a request.
func pendingOffers(tx *gorm.DB, requestID string) (int64, error) {
	var n int64
	err := tx.Model(&Offer{}).Where("request_id = ? AND state = ?", requestID, OfferPending).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count pending offers of %s: %w", requestID, err)
	}
	return n, nil
}

func loadOffer(tx *gorm.DB, id string) (Offer, error) {
	var o Offer
	err := tx.Where("id = ?", id).First(&o).Error
	if db.IsNotFound(err) {
		return Offer{}, errNotFound("offer", id)
	}
	if err != nil {
		return Offer{}, fmt.Errorf("load offer %s: %w", id, err)
	}
	return o, nil
}
