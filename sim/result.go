package sim

import (
	"math"
	"slices"
	"time"
)

// Result is what one strategy achieved over one simulated day (or the mean
// over several seeds, see Summary).
type Result struct {
	Strategy string `json:"strategy"`
	Seed     uint64 `json:"seed"`

	Requests     int `json:"requests"`      // all requests opened
	ASAP         int `json:"asap"`          // ASAP requests opened
	OnSiteInTime int `json:"on_site_in_60"` // ASAP requests with a technician on site within the SLA
	Unfulfilled  int `json:"unfulfilled"`   // requests nobody took by the give-up time
	Windowed     int `json:"windowed"`
	WindowOnTime int `json:"window_on_time"` // windowed requests reached before the window ended

	// TimeToSite holds, per ASAP request that got a technician on site, the
	// time from creation to arrival.
	TimeToSite []time.Duration `json:"-"`
	// ByHour is the ASAP on-site-within-SLA share per hour of day of creation.
	ByHour []HourShare `json:"by_hour"`

	Offers        int `json:"offers"`
	Accepted      int `json:"accepted"`
	Declined      int `json:"declined"`
	Expired       int `json:"expired"` // no answer before the timeout
	Dropped       int `json:"dropped"`
	CalledOut     int `json:"called_out"`  // off-duty technicians asked to come online
	CameOnline    int `json:"came_online"` // of them, those who did
	BusySeconds   float64
	OnDutySeconds float64
}

// HourShare is the on-time share of ASAP requests created in one hour.
type HourShare struct {
	Hour     int     `json:"hour"`
	Requests int     `json:"requests"`
	OnTime   int     `json:"on_time"`
	Share    float64 `json:"share"`
}

// Share is the share of ASAP requests on site within the SLA.
func (r Result) Share() float64 { return frac(r.OnSiteInTime, r.ASAP) }

// WindowShare is the share of windowed requests reached within their window.
func (r Result) WindowShare() float64 { return frac(r.WindowOnTime, r.Windowed) }

// OffersPerAccepted is the offers sent per accepted offer.
func (r Result) OffersPerAccepted() float64 { return frac(r.Offers, r.Accepted) }

// AcceptanceRate is accepted / (accepted + declined + expired).
func (r Result) AcceptanceRate() float64 { return frac(r.Accepted, r.Accepted+r.Declined+r.Expired) }

// Utilisation is the share of on-duty time technicians spent travelling to
// or working on jobs.
func (r Result) Utilisation() float64 {
	if r.OnDutySeconds == 0 {
		return 0
	}
	return r.BusySeconds / r.OnDutySeconds
}

// Percentile of the time to site (nearest rank), 0 when there is none.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.TimeToSite) == 0 {
		return 0
	}
	s := slices.Clone(r.TimeToSite)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Summary is one strategy over several seeds: the mean of each figure and the
// 95 % interval of the on-time share.
type Summary struct {
	Strategy   string
	Runs       []Result
	Share      float64 // mean on-site-within-SLA share
	ShareCI95  float64 // half-width of the 95 % interval of the mean
	P50, P90   time.Duration
	Max        time.Duration
	OffersPer  float64
	Acceptance float64
	Utilised   float64
	Unfulfil   float64 // mean unfulfilled count
	Windows    float64 // mean share of windowed requests reached before their window ended
	ByHour     []HourShare
	Pooled     []time.Duration // every time to site of every run, for the distribution chart
}

// Summarise folds the runs of one strategy.
func Summarise(strategy string, runs []Result) Summary {
	s := Summary{Strategy: strategy, Runs: runs}
	if len(runs) == 0 {
		return s
	}
	var shares []float64
	hours := map[int]*HourShare{}
	var pooled Result
	for _, r := range runs {
		shares = append(shares, r.Share())
		s.OffersPer += r.OffersPerAccepted() / float64(len(runs))
		s.Acceptance += r.AcceptanceRate() / float64(len(runs))
		s.Utilised += r.Utilisation() / float64(len(runs))
		s.Unfulfil += float64(r.Unfulfilled) / float64(len(runs))
		s.Windows += r.WindowShare() / float64(len(runs))
		pooled.TimeToSite = append(pooled.TimeToSite, r.TimeToSite...)
		for _, h := range r.ByHour {
			x, ok := hours[h.Hour]
			if !ok {
				x = &HourShare{Hour: h.Hour}
				hours[h.Hour] = x
			}
			x.Requests += h.Requests
			x.OnTime += h.OnTime
		}
	}
	s.Share, s.ShareCI95 = meanCI(shares)
	s.P50, s.P90, s.Max = pooled.Percentile(0.5), pooled.Percentile(0.9), pooled.Percentile(1)
	s.Pooled = pooled.TimeToSite
	for _, h := range hours {
		h.Share = frac(h.OnTime, h.Requests)
		s.ByHour = append(s.ByHour, *h)
	}
	slices.SortFunc(s.ByHour, func(a, b HourShare) int { return a.Hour - b.Hour })
	return s
}

// meanCI returns the mean and the half-width of its 95 % interval
// (Student's t for small samples).
func meanCI(xs []float64) (float64, float64) {
	n := float64(len(xs))
	if n == 0 {
		return 0, 0
	}
	mean := 0.0
	for _, x := range xs {
		mean += x / n
	}
	if n < 2 {
		return mean, 0
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(ss / (n - 1))
	return mean, tCritical(len(xs)-1) * sd / math.Sqrt(n)
}

// tCritical is the two-sided 95 % Student's t value for df degrees of freedom.
func tCritical(df int) float64 {
	table := []float64{12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.10, 2.09, 2.09}
	if df <= 0 {
		return math.NaN()
	}
	if df <= len(table) {
		return table[df-1]
	}
	if df < 40 {
		return 2.04
	}
	return 1.96
}

// Bound is the hindsight figures of one day: an upper bound on how many ASAP
// requests any strategy could have had on site in time, and what offline
// planners knowing the whole day reached (see Hindsight).
type Bound struct {
	Seed          uint64  `json:"seed"`
	ASAP          int     `json:"asap"`
	UpperBound    int     `json:"upper_bound"`    // no strategy can do better
	MatchingBound int     `json:"matching_bound"` // the earlier, looser bound
	Clairvoyant   int     `json:"clairvoyant"`    // a feasible greedy plan knowing the whole day
	Offline       int     `json:"offline"`        // the clairvoyant plan improved by local search
	UpperShare    float64 `json:"upper_share"`
	MatchingShare float64 `json:"matching_share"`
	ClairvoyShare float64 `json:"clairvoyant_share"`
	OfflineShare  float64 `json:"offline_share"`
	// WithoutWindows and OfflineWithoutWindows are the two plans with every
	// windowed request left out, as the upper bound does.
	WithoutWindows             int     `json:"clairvoyant_without_windows"`
	WithoutWindowsShare        float64 `json:"clairvoyant_without_windows_share"`
	OfflineWithoutWindows      int     `json:"offline_without_windows"`
	OfflineWithoutWindowsShare float64 `json:"offline_without_windows_share"`
}
