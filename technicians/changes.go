package technicians

import (
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/db"
)

// Channel is the change feed of technicians: every write that changes what
// matching knows of a technician (duty, capacity, jobs, certifications,
// shifts, offers, position) says so on it, inside its transaction, so every
// process's live index follows.
const Channel = "technicians"

// Feed payloads: "t id,id,…" (reload these technicians) and
// "p id lat lng;…" (positions only).
const (
	changedPrefix = "t "
	movedPrefix   = "p "
)

// Changed says inside tx that these technicians changed.
func Changed(tx *gorm.DB, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return db.Notify(tx, Channel, changedPrefix+strings.Join(ids, ","))
}

// movedPayload is the feed payload of one technician's move.
func movedPayload(m Moved) string {
	var sb strings.Builder
	sb.WriteString(movedPrefix)
	writeMoved(&sb, m)
	return sb.String()
}

func writeMoved(sb *strings.Builder, m Moved) {
	sb.WriteString(m.TechnicianID)
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatFloat(m.Point.Lat, 'f', -1, 64))
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatFloat(m.Point.Lng, 'f', -1, 64))
}

// notifyMoved says inside tx that technicians moved, with their positions,
// in payloads small enough for NOTIFY (at most 8000 bytes).
func notifyMoved(tx *gorm.DB, moved []Moved) error {
	var sb strings.Builder
	flush := func() error {
		if sb.Len() == 0 {
			return nil
		}
		err := db.Notify(tx, Channel, movedPrefix+sb.String())
		sb.Reset()
		return err
	}
	for _, m := range moved {
		if sb.Len() > 7000 {
			if err := flush(); err != nil {
				return err
			}
		}
		if sb.Len() > 0 {
			sb.WriteByte(';')
		}
		writeMoved(&sb, m)
	}
	return flush()
}

// Change is one decoded feed message: technicians to reload, or positions.
type Change struct {
	Reload []string
	Moves  []Position
}

// Position is a technician's new position from the feed.
type Position struct {
	ID    string
	Point geo.Point
}

// ParseChange decodes a payload of Channel; ok is false for one it does not
// know (a newer version's, say: the caller then resyncs).
func ParseChange(payload string) (c Change, ok bool) {
	switch {
	case strings.HasPrefix(payload, changedPrefix):
		return Change{Reload: strings.Split(payload[len(changedPrefix):], ",")}, true
	case strings.HasPrefix(payload, movedPrefix):
		for _, item := range strings.Split(payload[len(movedPrefix):], ";") {
			f := strings.Fields(item)
			if len(f) != 3 {
				return Change{}, false
			}
			lat, err1 := strconv.ParseFloat(f[1], 64)
			lng, err2 := strconv.ParseFloat(f[2], 64)
			if err1 != nil || err2 != nil {
				return Change{}, false
			}
			c.Moves = append(c.Moves, Position{ID: f[0], Point: geo.Point{Lat: lat, Lng: lng}})
		}
		return c, true
	}
	return Change{}, false
}
