package jobs

import (
	"fmt"
	"time"

	"github.com/onsite/onsite/dispatch"
)

// clock writes the times of one text: in its request's time zone, as a
// clock time when the day is the day of the text (ref), with the date
// before it otherwise ("Sat 5 Dec 14:00"), in the recipient's locale.
type clock struct {
	loc    *time.Location
	ref    time.Time // when the text is about: the day a bare clock time means
	locale string
}

// dateWords are the short weekday (Sunday first) and month names by locale,
// and how a date is written.
var dateWords = map[string]struct {
	days   [7]string
	months [12]string
	format func(day, date, month string) string
}{
	"en": {[7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
		[12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		func(day, date, month string) string { return day + " " + date + " " + month }},
	"de": {[7]string{"So.", "Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa."},
		[12]string{"Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."},
		func(day, date, month string) string { return day + " " + date + ". " + month }},
	"fr": {[7]string{"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."},
		[12]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."},
		func(day, date, month string) string { return day + " " + date + " " + month }},
	"it": {[7]string{"dom", "lun", "mar", "mer", "gio", "ven", "sab"},
		[12]string{"gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"},
		func(day, date, month string) string { return day + " " + date + " " + month }},
}

// date writes t's local date ("Sat 5 Dec").
func (c clock) date(t time.Time) string {
	t = t.In(c.loc)
	w, ok := dateWords[c.locale]
	if !ok {
		w = dateWords["en"]
	}
	return w.format(w.days[t.Weekday()], fmt.Sprint(t.Day()), w.months[t.Month()-1])
}

func sameDay(a, b time.Time) bool {
	y, m, d := a.Date()
	return b.Year() == y && b.Month() == m && b.Day() == d
}

// at writes t ("" for nil).
func (c clock) at(t *time.Time) string {
	if t == nil {
		return ""
	}
	return c.atDay(*t, c.ref)
}

// atDay writes t as a clock time when it falls on the local day of day, with
// its date otherwise.
func (c clock) atDay(t, day time.Time) string {
	t, day = t.In(c.loc), day.In(c.loc)
	if sameDay(t, day) {
		return t.Format("15:04")
	}
	return c.date(t) + " " + t.Format("15:04")
}

// window is a windowed request's window, or empty strings for an ASAP one:
// its date when it is not on the text's day, its start and end as clock
// times (the end dated when it ends on another day than it starts).
func (c clock) window(r dispatch.Request) (day, from, to string) {
	if r.Mode != dispatch.Window || r.WindowStart == nil || r.WindowEnd == nil {
		return "", "", ""
	}
	if !sameDay(r.WindowStart.In(c.loc), c.ref.In(c.loc)) {
		day = c.date(*r.WindowStart)
	}
	return day, r.WindowStart.In(c.loc).Format("15:04"), c.atDay(*r.WindowEnd, *r.WindowStart)
}
