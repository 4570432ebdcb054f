// Package geo owns points, H3 cells, rings around a cell, distances and the
// travel-time model. It imports no domain package.
package geo

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/uber/h3-go/v4"

	"github.com/onsite/onsite/internal/errs"
)

// Resolutions used by Onsite: 8 (edge ≈ 0.46 km) for cities, 7 (edge ≈ 1.2 km)
// for wide rural searches.
const (
	CityResolution  = 8
	RuralResolution = 7
)

const earthRadiusM = 6371008.8

// Point is a WGS84 position in degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Cell is an H3 cell index.
type Cell int64

// Validate checks that p is a real position; the error names latField or
// lngField.
func Validate(p Point, latField, lngField string) error {
	if math.IsNaN(p.Lat) || math.IsInf(p.Lat, 0) || p.Lat < -90 || p.Lat > 90 {
		return errs.InvalidField(latField, "latitude must be a number from -90 to 90")
	}
	if math.IsNaN(p.Lng) || math.IsInf(p.Lng, 0) || p.Lng < -180 || p.Lng > 180 {
		return errs.InvalidField(lngField, "longitude must be a number from -180 to 180")
	}
	return nil
}

// CellOf returns the H3 cell that holds p at the given resolution. p must be
// valid (see Validate).
func CellOf(p Point, resolution int) Cell {
	c, err := h3.LatLngToCell(h3.NewLatLng(p.Lat, p.Lng), resolution)
	if err != nil {
		// Only an invalid resolution or a non-finite point fails, both
		// programming errors once Validate has passed.
		panic("geo: cell of " + err.Error())
	}
	return Cell(c)
}

// Center returns the centre of a cell.
func (c Cell) Center() Point {
	ll, err := h3.CellToLatLng(h3.Cell(c))
	if err != nil {
		return Point{}
	}
	return Point{Lat: ll.Lat, Lng: ll.Lng}
}

// String is the usual hexadecimal form of the cell.
func (c Cell) String() string { return h3.Cell(c).String() }

// ParseCell reads the hexadecimal form of a cell.
func ParseCell(s string) (Cell, bool) {
	c := h3.CellFromString(s)
	return Cell(c), c.IsValid()
}

// Boundary returns the corners of the cell.
func (c Cell) Boundary() []Point {
	b, err := h3.CellToBoundary(h3.Cell(c))
	if err != nil {
		return nil
	}
	out := make([]Point, len(b))
	for i, ll := range b {
		out[i] = Point{Lat: ll.Lat, Lng: ll.Lng}
	}
	return out
}

// Ring returns the cells exactly k steps from c (k = 0 is c itself).
func Ring(c Cell, k int) []Cell {
	if k == 0 {
		return []Cell{c}
	}
	cells, err := h3.GridRing(h3.Cell(c), k)
	if err != nil {
		// Near a pentagon the fast ring fails; the disk difference does not.
		cells = ringByDisks(h3.Cell(c), k)
	}
	out := make([]Cell, 0, len(cells))
	for _, x := range cells {
		if x != 0 {
			out = append(out, Cell(x))
		}
	}
	return out
}

func ringByDisks(c h3.Cell, k int) []h3.Cell {
	dists, err := h3.GridDiskDistances(c, k)
	if err != nil || len(dists) <= k {
		return nil
	}
	return dists[k]
}

// Disk returns every cell within k steps of c.
func Disk(c Cell, k int) []Cell {
	cells, err := h3.GridDisk(h3.Cell(c), k)
	if err != nil {
		return nil
	}
	out := make([]Cell, 0, len(cells))
	for _, x := range cells {
		if x != 0 {
			out = append(out, Cell(x))
		}
	}
	return out
}

// centerSpacingKm is the mean distance between neighbouring cell centres.
var centerSpacingKm = map[int]float64{6: 6.4, 7: 2.44, 8: 0.92, 9: 0.35, 10: 0.13}

// RingMinDistanceKm is a lower bound on the distance from any point in the
// centre cell to any point in ring k at the resolution: everything in ring k
// is at least this far away. It lets a search stop widening.
func RingMinDistanceKm(resolution, k int) float64 {
	if k <= 1 {
		return 0
	}
	// Ring k's cells have centres about k·spacing away at the closest (flat
	// side), and each cell reaches spacing/√3 from its centre. Take a margin.
	s := centerSpacingKm[resolution]
	d := (float64(k)*math.Sqrt(3)/2 - 2/math.Sqrt(3)) * s * 0.9
	return math.Max(0, d)
}

// RingMaxDistanceKm is an upper bound on the distance from any point in the
// centre cell to any point in ring k at the resolution: a path of k steps
// between neighbours' centres, and a cell's radius at either end, with room
// for cells twice the mean size.
func RingMaxDistanceKm(resolution, k int) float64 {
	s := centerSpacingKm[resolution]
	return (float64(k) + 2/math.Sqrt(3)) * s * 2
}

// MaxRing is the smallest k beyond which every ring is farther than km.
func MaxRing(resolution int, km float64) int {
	k := 1
	for RingMinDistanceKm(resolution, k+1) <= km {
		k++
	}
	return k
}

// DistanceM is the great-circle distance between a and b in metres.
func DistanceM(a, b Point) float64 {
	const rad = math.Pi / 180
	lat1, lat2 := a.Lat*rad, b.Lat*rad
	dLat := lat2 - lat1
	dLng := (b.Lng - a.Lng) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// WithinM reports whether a and b lie at most m metres apart, as DistanceM
// says, but cheaply when the answer is clear: a flat-earth distance (good to
// far better than 1 % over a city) decides, and DistanceM only near the edge.
func WithinM(a, b Point, m float64) bool {
	const rad = math.Pi / 180
	x := (b.Lng - a.Lng) * rad * math.Cos((a.Lat+b.Lat)/2*rad)
	y := (b.Lat - a.Lat) * rad
	d := math.Sqrt(x*x+y*y) * earthRadiusM
	switch {
	case d < m*0.99:
		return true
	case d > m*1.01 && d < 1_000_000:
		return false
	}
	return DistanceM(a, b) <= m
}

// LatSpanDeg is a difference in latitude, in degrees, beyond which two
// points surely lie more than m metres apart by DistanceM: the meridian arc
// is the shortest way to change latitude; 1 % is margin.
func LatSpanDeg(m float64) float64 {
	const rad = math.Pi / 180
	return m / earthRadiusM / rad * 1.01
}

// Offset returns the point dx metres east and dy metres north of p; handy for
// placing things in tests and the simulator.
func Offset(p Point, dxM, dyM float64) Point {
	const rad = math.Pi / 180
	lat := p.Lat + dyM/earthRadiusM/rad
	lng := p.Lng + dxM/(earthRadiusM*math.Cos(p.Lat*rad))/rad
	return Point{Lat: lat, Lng: lng}
}

// MarshalText writes the cell in its hexadecimal form.
func (c Cell) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads the hexadecimal form of a cell.
func (c *Cell) UnmarshalText(b []byte) error {
	x, ok := ParseCell(string(b))
	if !ok {
		return errs.InvalidField("cell", "not a valid H3 cell: %q", string(b))
	}
	*c = x
	return nil
}

// Parent is the cell at a coarser resolution that holds c.
func (c Cell) Parent(resolution int) Cell {
	p, err := h3.Cell(c).Parent(resolution)
	if err != nil {
		return c
	}
	return Cell(p)
}

// RingCache remembers rings (Ring) by centre and distance, so a search that
// walks the same rings again costs a map lookup instead of a call into the
// H3 library. It is safe for concurrent use; the slices it returns are
// shared and must not be changed. It forgets everything when it holds more
// than its limit of cells.
type RingCache struct {
	mu    sync.RWMutex
	rings map[ringKey][]Cell
	cells int
	limit int
}

type ringKey struct {
	c Cell
	k int
}

// NewRingCache returns a cache holding at most limit cells in all.
func NewRingCache(limit int) *RingCache {
	return &RingCache{rings: map[ringKey][]Cell{}, limit: limit}
}

// Ring is Ring(c, k), from the cache when it can.
func (rc *RingCache) Ring(c Cell, k int) []Cell {
	key := ringKey{c, k}
	rc.mu.RLock()
	r, ok := rc.rings[key]
	rc.mu.RUnlock()
	if ok {
		return r
	}
	r = Ring(c, k)
	rc.mu.Lock()
	if rc.cells+len(r) > rc.limit {
		rc.rings, rc.cells = map[ringKey][]Cell{}, 0
	}
	rc.rings[key] = r
	rc.cells += len(r)
	rc.mu.Unlock()
	return r
}

// GridDistance is the number of H3 steps between two cells of one
// resolution; ok is false when H3 cannot say (across a pentagon, too far).
func GridDistance(a, b Cell) (int, bool) {
	d, err := h3.Cell(a).GridDistance(h3.Cell(b))
	if err != nil {
		return 0, false
	}
	return d, true
}

// Resolution is the H3 resolution of the cell.
func (c Cell) Resolution() int { return h3.Cell(c).Resolution() }

// Area is a named service area: the H3 cells (of any resolution) it covers.
type Area struct {
	Name  string `json:"name"`
	Cells []Cell `json:"cells"`
}

// Contains reports whether cell c, of a resolution no coarser than the
// area's cells, lies inside the area.
func (a Area) Contains(c Cell) bool {
	for _, ac := range a.Cells {
		res := ac.Resolution()
		if c.Resolution() >= res && c.Parent(res) == ac {
			return true
		}
	}
	return false
}

// ParseAreas reads service areas written name=cell,cell;name=cell (cells in
// their hexadecimal form, resolution 0 to CityResolution).
func ParseAreas(s string) ([]Area, error) {
	var out []Area
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, cells, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || !validAreaName(name) {
			return nil, fmt.Errorf("want name=cell,cell;… with names of 1-40 letters, digits, - or _, not %q", part)
		}
		if seen[name] {
			return nil, fmt.Errorf("area %q is named twice", name)
		}
		seen[name] = true
		a := Area{Name: name}
		for _, cs := range strings.Split(cells, ",") {
			c, ok := ParseCell(strings.TrimSpace(cs))
			if !ok || c.Resolution() > CityResolution {
				return nil, fmt.Errorf("area %q: %q is not an H3 cell of resolution 0 to %d", name, cs, CityResolution)
			}
			a.Cells = append(a.Cells, c)
		}
		out = append(out, a)
	}
	return out, nil
}

func validAreaName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
