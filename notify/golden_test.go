package notify_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/onsite/onsite/notify"
)

var update = flag.Bool("update", false, "rewrite testdata/texts.golden from the templates")

// reasonOf is a reason each kind that gives one may give (the others take
// none).
var reasonOf = map[notify.Kind]notify.Reason{
	notify.KindCancelled:    notify.ReasonCancelledByCustomer,
	notify.KindReplyTooLate: notify.ReasonOfferTaken,
	notify.KindJobTaken:     notify.ReasonJobReassigned,
	notify.KindJobCancelled: notify.ReasonJobCustomerCancelled,
	notify.KindOffDuty:      notify.ReasonShiftEnded,
}

// days is a date in each locale, as jobs writes it for a window on
// another day.
var days = map[string]string{"en": "Sat 5 Dec", "de": "Sa. 5. Dez.", "fr": "sam. 5 déc.", "it": "sab 5 dic"}

// variants are the shapes of data a text is written with: every slot
// filled for an ASAP request; a window today and on another day; a job not
// fixed; nothing optional known (no ETA, no link).
func variants(kind notify.Kind, locale string) []struct {
	name string
	data notify.Data
} {
	// (reminders are for windows only: their first shape is a window)
	km := "2,4" // as jobs writes it in the locale
	if locale == "en" {
		km = "2.4"
	}
	full := notify.Data{Skill: "Wi-Fi", DistanceKm: km, EtaMinutes: 9, ETA: "15:40", ExpiresAt: "15:33", Technician: "Tina",
		Previous: "Marco", Link: "https://onsite.test/l/abc", Code: "123456", Reason: reasonOf[kind]}
	window := full
	window.WindowFrom, window.WindowTo = "14:00", "16:00"
	later := window
	later.Day = days[locale]
	unresolved := full
	unresolved.Unresolved = true
	bare := notify.Data{Skill: "Wi-Fi", Technician: "Tina", Previous: "Marco", Code: "123456", DistanceKm: km, EtaMinutes: 9, ExpiresAt: "15:33"}
	type variant = struct {
		name string
		data notify.Data
	}
	if kind == notify.KindReminder || kind == notify.KindReminderTech || kind == notify.KindRescheduled {
		return []variant{{"asap", window}, {"window later", later}} // only windows have these
	}
	return []variant{{"asap", full}, {"window", window}, {"window later", later}, {"not fixed", unresolved}, {"nothing known", bare}}
}

// TestEveryTextWordForWord renders every kind in every locale in each shape
// of data and compares the texts with testdata/texts.golden, which a person
// reads line by line (go test ./notify -run WordForWord -update rewrites
// it). A shape that reads like the first one is not listed again.
func TestEveryTextWordForWord(t *testing.T) {
	t.Parallel()
	texts := notify.Texts()
	kinds := make([]string, 0, len(texts))
	for k := range texts {
		kinds = append(kinds, string(k))
	}
	slices.Sort(kinds)
	var b strings.Builder
	seen := map[string]string{}
	for _, k := range kinds {
		kind := notify.Kind(k)
		for _, loc := range notify.Locales {
			if texts[kind][loc] == "" {
				t.Errorf("%s has no %s text", kind, loc)
				continue
			}
			first := ""
			for _, v := range variants(kind, loc) {
				text, err := notify.Render(kind, loc, v.data)
				if err != nil || text == "" {
					t.Fatalf("%s/%s %s: %q %v", kind, loc, v.name, text, err)
				}
				if strings.Contains(text, "{{") || strings.Contains(text, "<no value>") || strings.Contains(text, " .") || strings.Contains(text, " ,") {
					t.Errorf("%s/%s %s has an empty slot: %q", kind, loc, v.name, text)
				}
				if v.name != "asap" && text == first {
					continue
				}
				if v.name == "asap" {
					first = text
					if other, ok := seen[text]; ok {
						t.Errorf("%s/%s reads like %s: %q", kind, loc, other, text)
					}
					seen[text] = k + "/" + loc
				}
				fmt.Fprintf(&b, "%s/%s %s: %s\n", kind, loc, v.name, text)
			}
		}
	}
	const golden = "testdata/texts.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	got, wantLines := strings.Split(b.String(), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(got), len(wantLines)) {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Fatalf("texts differ from %s at line %d:\n got: %s\nwant: %s\n(read the change, then run with -update)", golden, i+1, g, w)
		}
	}
}
