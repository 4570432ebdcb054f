package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
)

// TestMessageFactsOverHTTP: the inputs texts depend on (a request's time
// zone, a skill's names by language, the rating link) are validated at the
// door: bad input answers 4xx in the shared error shape and writes nothing.
func TestMessageFactsOverHTTP(t *testing.T) {
	t.Parallel()
	for _, engine := range apitest.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, engine, dbtest.RedisDBApp, apitest.Env("ONSITE_WORKERS", "false"))
			ops := s.Token(auth.Ops, "alice")
			cust := s.Token(auth.Customer, "carla")
			for _, tt := range []struct {
				name   string
				method string
				path   string
				token  string
				body   any
				status int
				field  string
			}{
				{"unknown zone", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54, "time_zone": "Mars/Olympus"}, 422, "time_zone"},
				{"Local is no zone", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54, "time_zone": "Local"}, 422, "time_zone"},
				{"a path as a zone", "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54, "time_zone": "../../etc/passwd"}, 422, "time_zone"},
				{"skill name in an unknown language", "POST", "/v1/skills", ops, map[string]any{"code": "tv_setup", "name": "TV", "names": map[string]string{"es": "Televisión"}}, 422, "names"},
				{"empty skill name in a language", "POST", "/v1/skills", ops, map[string]any{"code": "tv_setup", "name": "TV", "names": map[string]string{"de": " "}}, 422, "names.de"},
				{"names not an object", "POST", "/v1/skills", ops, map[string]any{"code": "tv_setup", "name": "TV", "names": []string{"TV"}}, 400, "names"},
				{"rename to nothing", "PATCH", "/v1/skills/wifi_setup", ops, map[string]any{"name": ""}, 422, "name"},
				{"nothing to change", "PATCH", "/v1/skills/wifi_setup", ops, map[string]any{}, 422, "names"},
				{"rename an unknown skill", "PATCH", "/v1/skills/nope", ops, map[string]any{"name": "x"}, 404, ""},
				{"customers do not name skills", "PATCH", "/v1/skills/wifi_setup", cust, map[string]any{"name": "x"}, 403, ""},
				{"a forged rating link", "POST", "/v1/rate/AAAA.bbbb", "", map[string]any{"stars": 5}, 404, ""},
				{"a rating link that is no token", "POST", "/v1/rate/%00", "", map[string]any{"stars": 5}, 400, "path"},
			} {
				if tt.name == "unknown zone" {
					s.Must(http.StatusCreated, "POST", "/v1/skills", ops, map[string]any{"code": "wifi_setup", "name": "Wi-Fi setup"}, nil)
				}
				before := map[string]int64{"requests": s.Rows("requests"), "skills": s.Rows("skills"), "events": s.Rows("events")}
				r := s.Call(tt.method, tt.path, tt.token, tt.body)
				if r.Status != tt.status {
					t.Errorf("%s: %d %s, want %d", tt.name, r.Status, r.Body, tt.status)
					continue
				}
				if e := r.Err(t); e.Error.Field != tt.field {
					t.Errorf("%s: field %q, want %q", tt.name, e.Error.Field, tt.field)
				}
				for table, n := range before {
					if got := s.Rows(table); got != n {
						t.Errorf("%s wrote %d rows into %s", tt.name, got-n, table)
					}
				}
			}
			var sk struct {
				Name  string            `json:"name"`
				Names map[string]string `json:"names"`
			}
			s.Must(http.StatusOK, "PATCH", "/v1/skills/wifi_setup", ops, map[string]any{"names": map[string]string{"de": "WLAN-Einrichtung"}}, &sk)
			if sk.Name != "Wi-Fi setup" || sk.Names["de"] != "WLAN-Einrichtung" {
				t.Fatalf("renamed skill: %+v", sk)
			}
			var req struct {
				TimeZone string `json:"time_zone"`
			}
			s.Must(http.StatusCreated, "POST", "/v1/requests", cust, map[string]any{"skill": "wifi_setup", "lat": 47.37, "lng": 8.54, "time_zone": "America/New_York"}, &req)
			if req.TimeZone != "America/New_York" {
				t.Fatalf("request time zone %q", req.TimeZone)
			}
			page := s.Must(http.StatusOK, "GET", "/rate/anything", "", nil, nil)
			if !strings.Contains(string(page.Body), "How did it go?") {
				t.Fatalf("rating page: %s", page.Body)
			}
		})
	}
}
