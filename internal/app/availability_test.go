package app_test

import (
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

// settings is what PATCH changes of a technician, as the API answers it.
type settings struct {
	ID         string     `json:"id"`
	Capacity   int        `json:"capacity"`
	RadiusKm   float64    `json:"radius_km"`
	TravelMode string     `json:"travel_mode"`
	SpeedKmh   float64    `json:"speed_kmh"`
	Locale     string     `json:"locale"`
	DutyStatus string     `json:"duty_status"`
	UpdatedAt  time.Time  `json:"updated_at"`
	OnDutyFrom *time.Time `json:"on_duty_from"`
	Weekly     []struct {
		Kind, Day, Start, End string
	} `json:"weekly_shifts"`
}

// TestTechnicianSettingsOverHTTP: ops change a technician's settings, the
// technician their own locale; bad input answers 4xx in the shared shape
// and writes nothing; a smaller radius reaches the live index at once (no
// workers: no batch round offers the request meanwhile).
func TestTechnicianSettingsOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_OFFER_STRATEGY", "batch"), apitest.Env("ONSITE_WORKERS", "false"))
			tech := onboard(t, s, 3000)[0]
			ops := s.Token(auth.Ops, "alice")
			tok := s.Token(auth.Technician, tech)
			cust := s.Token(auth.Customer, "carla")
			var req fullRequest
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "router_replace", "lat": 47.3769, "lng": 8.5417}, &req)
			candidates := func() []string {
				var list struct {
					Items []struct {
						TechnicianID string `json:"technician_id"`
					}
				}
				s.Must(http.StatusOK, "GET", "/v1/requests/"+req.ID+"/candidates", ops, nil, &list)
				var ids []string
				for _, c := range list.Items {
					ids = append(ids, c.TechnicianID)
				}
				return ids
			}
			if !slices.Contains(candidates(), tech) {
				t.Fatal("the technician 3 km away is no candidate")
			}

			bad := []struct {
				name   string
				method string
				path   string
				token  string
				body   any
				status int
				code   string
				field  string
			}{
				{"nothing to change", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{}, 422, "invalid", ""},
				{"capacity zero", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"capacity": 0}, 422, "invalid", "capacity"},
				{"capacity as text", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"capacity": "two"}, 400, "malformed", "capacity"},
				{"radius negative", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"radius_km": -1}, 422, "invalid", "radius_km"},
				{"speed too fast", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"speed_kmh": 900}, 422, "invalid", "speed_kmh"},
				{"rocket", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"travel_mode": "rocket"}, 422, "invalid", "travel_mode"},
				{"locale", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"locale": "xx"}, 422, "invalid", "locale"},
				{"a name is not a setting", "PATCH", "/v1/technicians/" + tech, ops, map[string]any{"name": "Tom"}, 400, "malformed", "name"},
				{"unknown technician", "PATCH", "/v1/technicians/nope", ops, map[string]any{"locale": "de"}, 404, "not_found", ""},
				{"a technician patches someone", "PATCH", "/v1/technicians/" + tech, tok, map[string]any{"locale": "de"}, 403, "forbidden", ""},
				{"a customer patches a technician", "PATCH", "/v1/technicians/" + tech, cust, map[string]any{"locale": "de"}, 403, "forbidden", ""},
				{"own capacity", "PATCH", "/v1/me", tok, map[string]any{"capacity": 3}, 400, "malformed", "capacity"},
				{"own locale missing", "PATCH", "/v1/me", tok, map[string]any{}, 422, "invalid", "locale"},
				{"own locale bad", "PATCH", "/v1/me", tok, map[string]any{"locale": "tlh"}, 422, "invalid", "locale"},
				{"weekly missing", "PUT", "/v1/technicians/" + tech + "/weekly-shifts", ops, map[string]any{}, 422, "invalid", "weekly"},
				{"weekly bad day", "PUT", "/v1/technicians/" + tech + "/weekly-shifts", ops, map[string]any{"weekly": []any{map[string]string{"day": "mon", "start": "08:00", "end": "17:00"}, map[string]string{"day": "funday", "start": "08:00", "end": "17:00"}}}, 422, "invalid", "weekly[1].day"},
				{"weekly bad time", "PUT", "/v1/technicians/" + tech + "/weekly-shifts", ops, map[string]any{"weekly": []any{map[string]string{"day": "mon", "start": "8am", "end": "17:00"}}}, 422, "invalid", "weekly[0].start"},
				{"a nap", "PUT", "/v1/technicians/" + tech + "/shifts", ops, map[string]any{"shifts": []any{map[string]any{"kind": "nap", "start": time.Now(), "end": time.Now().Add(time.Hour)}}}, 422, "invalid", "shifts[0].kind"},
			}
			tables := []string{"technicians", "shifts", "weekly_shifts", "assignments", "events", "outbox"}
			before := map[string]int64{}
			for _, tb := range tables {
				before[tb] = s.Rows(tb)
			}
			var was settings
			s.Must(http.StatusOK, "GET", "/v1/technicians/"+tech, ops, nil, &was)
			for _, tt := range bad {
				t.Run(tt.name, func(t *testing.T) {
					r := s.Call(tt.method, tt.path, tt.token, tt.body)
					if r.Status != tt.status {
						t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
					}
					if e := r.Err(t); e.Error.Code != tt.code || e.Error.Field != tt.field {
						t.Fatalf("error %+v, want code %s field %q", e.Error, tt.code, tt.field)
					}
				})
			}
			for _, tb := range tables {
				if n := s.Rows(tb); n != before[tb] {
					t.Errorf("table %s: %d rows, had %d before the bad input", tb, n, before[tb])
				}
			}
			var is settings
			s.Must(http.StatusOK, "GET", "/v1/technicians/"+tech, ops, nil, &is)
			if !reflect.DeepEqual(was, is) {
				t.Fatalf("bad input changed the technician:\nbefore %+v\nafter  %+v", was, is)
			}

			// Good changes, and what they do.
			var got settings
			s.Must(http.StatusOK, "PATCH", "/v1/technicians/"+tech, ops, map[string]any{"capacity": 2, "travel_mode": "bike", "locale": "fr"}, &got)
			if got.Capacity != 2 || got.TravelMode != "bike" || got.SpeedKmh != 15 || got.Locale != "fr" || got.RadiusKm != was.RadiusKm {
				t.Fatalf("after PATCH: %+v", got)
			}
			s.Must(http.StatusOK, "PATCH", "/v1/me", tok, map[string]any{"locale": "it"}, &got)
			if got.Locale != "it" || got.Capacity != 2 {
				t.Fatalf("after PATCH /v1/me: %+v", got)
			}
			s.Must(http.StatusOK, "PATCH", "/v1/technicians/"+tech, ops, map[string]any{"radius_km": 1.5}, &got)
			if slices.Contains(candidates(), tech) {
				t.Fatal("still a candidate 3 km away with a radius of 1.5 km")
			}
			s.Must(http.StatusOK, "PATCH", "/v1/technicians/"+tech, ops, map[string]any{"radius_km": 10}, nil)
			if !slices.Contains(candidates(), tech) {
				t.Fatal("no candidate again with a radius of 10 km")
			}

			// Weekly shifts all of tomorrow only: the technician is out of
			// matching now, and going on duty again is kept for tomorrow.
			zurich, _ := time.LoadLocation("Europe/Zurich")
			tomorrow := time.Now().In(zurich).AddDate(0, 0, 1)
			day := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[tomorrow.Weekday()]
			s.Must(http.StatusOK, "PUT", "/v1/technicians/"+tech+"/weekly-shifts", ops, map[string]any{"weekly": []any{
				map[string]string{"day": day, "start": "07:30", "end": "16:00"},
				map[string]string{"kind": "break", "day": day, "start": "12:00", "end": "12:45"},
			}}, &got)
			if len(got.Weekly) != 2 || got.Weekly[0].Start != "07:30" || got.Weekly[0].End != "16:00" || got.Weekly[1].Kind != "break" {
				t.Fatalf("weekly shifts as answered: %+v", got.Weekly)
			}
			if slices.Contains(candidates(), tech) {
				t.Fatal("a candidate outside their weekly shifts")
			}
			s.Must(http.StatusOK, "PUT", "/v1/me/duty", tok, map[string]string{"status": "offline"}, nil)
			s.Must(http.StatusOK, "PUT", "/v1/me/duty", tok, map[string]string{"status": "available"}, &got)
			want := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 7, 30, 0, 0, zurich)
			if got.OnDutyFrom == nil || !got.OnDutyFrom.Equal(want) || got.DutyStatus != "available" {
				t.Fatalf("on duty early: %s from %v, want from %s", got.DutyStatus, got.OnDutyFrom, want)
			}
			s.Must(http.StatusOK, "PUT", "/v1/technicians/"+tech+"/weekly-shifts", ops, map[string]any{"weekly": []any{}}, nil)
			s.Must(http.StatusOK, "PUT", "/v1/technicians/"+tech+"/shifts", ops, map[string]any{"shifts": []any{
				map[string]any{"start": time.Now().Add(-3 * time.Hour), "end": time.Now().Add(-time.Hour)},
			}}, nil)
			r := s.Call("PUT", "/v1/me/duty", tok, map[string]string{"status": "available"})
			if e := r.Err(t); r.Status != http.StatusConflict || e.Error.Reason != "no_shift_ahead" {
				t.Fatalf("on duty with no shift ahead: %d %+v", r.Status, e.Error)
			}
		})
	}
}
