package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/errs"
)

// HeatCell is demand against supply in one H3 cell.
type HeatCell struct {
	Cell                 geo.Cell    `json:"cell"`
	Boundary             [][]float64 `json:"boundary"` // [lat, lng] corners
	OpenRequests         int         `json:"open_requests"`
	AvailableTechnicians int         `json:"available_technicians"`
}

// Heatmap counts, per cell at the resolution (7 or 8), the requests opened
// in the last hour that are still open and the technicians available now.
func (s *Service) Heatmap(ctx context.Context, resolution int) ([]HeatCell, error) {
	if resolution != geo.CityResolution && resolution != geo.RuralResolution {
		return nil, errs.InvalidField("resolution", "resolution must be 7 or 8")
	}
	now := s.now()
	var reqs []struct{ Lat, Lng float64 }
	if err := s.db.WithContext(ctx).Model(&Request{}).Select("lat", "lng").
		Where("created_at >= ? AND state IN ?", now.Add(-time.Hour), []State{Searching, Scheduled, Assigned, EnRoute}).
		Scan(&reqs).Error; err != nil {
		return nil, fmt.Errorf("heatmap requests: %w", err)
	}
	var techs []struct{ Lat, Lng float64 }
	if err := s.db.WithContext(ctx).Table("technicians").Select("lat", "lng").
		Where("duty_status = ? AND lat IS NOT NULL", "available").Scan(&techs).Error; err != nil {
		return nil, fmt.Errorf("heatmap technicians: %w", err)
	}
	cells := map[geo.Cell]*HeatCell{}
	at := func(lat, lng float64) *HeatCell {
		c := geo.CellOf(geo.Point{Lat: lat, Lng: lng}, resolution)
		h, ok := cells[c]
		if !ok {
			h = &HeatCell{Cell: c}
			for _, p := range c.Boundary() {
				h.Boundary = append(h.Boundary, []float64{p.Lat, p.Lng})
			}
			cells[c] = h
		}
		return h
	}
	for _, r := range reqs {
		at(r.Lat, r.Lng).OpenRequests++
	}
	for _, t := range techs {
		at(t.Lat, t.Lng).AvailableTechnicians++
	}
	out := make([]HeatCell, 0, len(cells))
	for _, h := range cells {
		out = append(out, *h)
	}
	return out, nil
}
