package dispatch

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/onsite/onsite/internal/errs"
)

// KPIs are the dispatch figures ops watch, over requests created in a period.
type KPIs struct {
	From                 time.Time `json:"from"`
	To                   time.Time `json:"to"`
	Requests             int       `json:"requests"`
	ASAPRequests         int       `json:"asap_requests"`
	OnSiteWithin60       float64   `json:"on_site_within_60_share"` // of ASAP requests not cancelled by people
	TimeToSiteP50Seconds *int      `json:"time_to_site_p50_s"`
	TimeToSiteP90Seconds *int      `json:"time_to_site_p90_s"`
	OffersPerRequest     float64   `json:"offers_per_request"`
	AcceptanceRate       float64   `json:"acceptance_rate"` // accepted / answered or expired
	Unfulfilled          int       `json:"unfulfilled"`
	Open                 int       `json:"open"`
	Completed            int       `json:"completed"`
	FirstTimeFixRate     float64   `json:"first_time_fix_rate"` // fixed on the first visit / completed
	ResolutionP50Seconds *int      `json:"time_to_resolution_p50_s"`
}

// kpiRequest is what KPIs need of a request.
type kpiRequest struct {
	Mode        Mode
	State       State
	CreatedAt   time.Time
	SLADeadline *time.Time
	OnSiteAt    *time.Time
	CompletedAt *time.Time
	Outcome     *string
	Visits      int
}

// kpiOffers counts offers by state.
type kpiOffers struct {
	Total, Accepted, Declined, Expired int
}

// ComputeKPIs is the pure calculation behind KPIs. An ASAP request counts
// towards the on-site share once it is decided: on site, unfulfilled, or past
// its deadline without a technician there; cancelled ones do not count.
func ComputeKPIs(reqs []kpiRequest, offers kpiOffers, within time.Duration, now time.Time) KPIs {
	var k KPIs
	k.Requests = len(reqs)
	var toSite, toResolve []time.Duration
	judged, onTime, fixedFirst := 0, 0, 0
	for _, r := range reqs {
		switch r.State {
		case Unfulfilled:
			k.Unfulfilled++
		case Completed:
			k.Completed++
			if r.Outcome != nil && *r.Outcome == "fixed" && r.Visits <= 1 {
				fixedFirst++
			}
			if r.CompletedAt != nil {
				toResolve = append(toResolve, r.CompletedAt.Sub(r.CreatedAt))
			}
		}
		if r.State.Open() {
			k.Open++
		}
		if r.Mode != ASAP {
			continue
		}
		k.ASAPRequests++
		if r.OnSiteAt != nil {
			d := r.OnSiteAt.Sub(r.CreatedAt)
			toSite = append(toSite, d)
			judged++
			if d <= within {
				onTime++
			}
		} else if r.State == Unfulfilled || (r.State.Open() && r.SLADeadline != nil && now.After(*r.SLADeadline)) {
			judged++
		}
	}
	k.OnSiteWithin60 = ratio(onTime, judged)
	k.TimeToSiteP50Seconds = percentile(toSite, 0.5)
	k.TimeToSiteP90Seconds = percentile(toSite, 0.9)
	k.ResolutionP50Seconds = percentile(toResolve, 0.5)
	k.OffersPerRequest = round3(ratioF(offers.Total, k.Requests))
	k.AcceptanceRate = ratio(offers.Accepted, offers.Accepted+offers.Declined+offers.Expired)
	k.FirstTimeFixRate = ratio(fixedFirst, k.Completed)
	return k
}

func ratio(a, b int) float64 { return round3(ratioF(a, b)) }

func ratioF(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// percentile uses the nearest-rank method; nil when there is no data.
func percentile(ds []time.Duration, p float64) *int {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	v := int(s[i].Seconds())
	return &v
}

// KPIs computes the figures over requests created in [from, to).
func (s *Service) KPIs(ctx context.Context, from, to time.Time) (KPIs, error) {
	if !to.After(from) {
		return KPIs{}, errs.InvalidField("to", "to must be after from")
	}
	if to.Sub(from) > 366*24*time.Hour {
		return KPIs{}, errs.InvalidField("from", "the period is at most a year")
	}
	from, to = from.UTC(), to.UTC()
	var reqs []kpiRequest
	if err := s.db.WithContext(ctx).Model(&Request{}).
		Select("mode", "state", "created_at", "sla_deadline", "on_site_at", "completed_at", "outcome", "visits").
		Where("created_at >= ? AND created_at < ?", from, to).Scan(&reqs).Error; err != nil {
		return KPIs{}, fmt.Errorf("kpi requests: %w", err)
	}
	var counts []struct {
		State OfferState
		N     int
	}
	if err := s.db.WithContext(ctx).Model(&Offer{}).Select("offers.state AS state, COUNT(*) AS n").
		Joins("JOIN requests r ON r.id = offers.request_id").
		Where("r.created_at >= ? AND r.created_at < ?", from, to).Group("offers.state").Scan(&counts).Error; err != nil {
		return KPIs{}, fmt.Errorf("kpi offers: %w", err)
	}
	var o kpiOffers
	for _, c := range counts {
		o.Total += c.N
		switch c.State {
		case OfferAccepted:
			o.Accepted = c.N
		case OfferDeclined:
			o.Declined = c.N
		case OfferExpired:
			o.Expired = c.N
		}
	}
	k := ComputeKPIs(reqs, o, s.cfg.SLA, s.now())
	k.From, k.To = from, to
	return k, nil
}
