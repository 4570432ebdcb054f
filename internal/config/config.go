// Package config is the only reader of the environment. Load turns a list of
// KEY=value strings into a Config or an error that names the variable.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // ONSITE_TIME_ZONE works on hosts without a zoneinfo database

	"github.com/onsite/onsite/geo"
	"github.com/onsite/onsite/internal/phones"
)

// Config is every setting Onsite reads at start.
type Config struct {
	Addr        string // ONSITE_ADDR: listen address
	DataDir     string // ONSITE_DATA_DIR: SQLite file and generated secrets in embedded mode
	DatabaseURL string // DATABASE_URL: postgres://… ; empty means the embedded SQLite file
	RedisURL    string // REDIS_URL: redis://… or redis+cluster://… ; empty means the embedded Redis-compatible server
	JWTSecret   string // ONSITE_JWT_SECRET: HS256 key; generated under DataDir when empty in embedded mode
	LogLevel    slog.Level
	LogFormat   string // text or json
	BodyLimit   int64  // ONSITE_BODY_LIMIT: bytes
	PublicURL   string // ONSITE_PUBLIC_URL: how clients reach this service (links, callbacks)

	SLA           time.Duration // ONSITE_SLA: promise for ASAP requests (60m)
	GiveUp        time.Duration // ONSITE_GIVE_UP: after creation, a still-searching request becomes unfulfilled (default = SLA)
	LateAfter     time.Duration // ONSITE_LATE_AFTER: a predicted arrival this far past what the customer was told texts them a new ETA (default 10m)
	WindowLead    time.Duration // ONSITE_WINDOW_LEAD: a windowed request starts searching this long before its window
	JobLength     time.Duration // ONSITE_JOB_LENGTH: planned time on site; work taken before a booked window must leave it
	OfferStrategy string        // ONSITE_OFFER_STRATEGY: batch, sequential or wave
	BatchWindow   time.Duration // ONSITE_BATCH_WINDOW: how often the batch strategy assigns
	BatchUrgency  float64       // ONSITE_BATCH_URGENCY: batch cost minutes per minute left to the deadline (0: off)
	RegionRes     int           // ONSITE_REGION_RESOLUTION: H3 resolution of the regions batch rounds are partitioned by (0: one region)
	OfferTimeout  time.Duration // ONSITE_OFFER_TIMEOUT: how long an offer stays open
	WaveSize      int           // ONSITE_WAVE_SIZE: offers sent at once by the wave strategy
	MaxSearchKm   float64       // ONSITE_MAX_SEARCH_KM: the widest candidate search

	ArrivalRadiusM float64       // ONSITE_ARRIVAL_RADIUS: metres from the site within which a technician counts as there
	NoShowWait     time.Duration // ONSITE_NO_SHOW_WAIT: how long a technician at an empty door waits before the request closes as a no-show
	ConfirmTTL     time.Duration // ONSITE_CONFIRM_TTL: a device's request not confirmed by its owner within this is cancelled
	ServiceAreas   []geo.Area    // ONSITE_SERVICE_AREAS: named areas the KPIs are reported by

	StaleAfter time.Duration // ONSITE_STALE_AFTER: no position for this long takes a technician off duty
	PingFlush  time.Duration // ONSITE_PING_FLUSH: position reports are written in batches this often

	TwilioAccountSID          string // TWILIO_ACCOUNT_SID
	TwilioAuthToken           string // TWILIO_AUTH_TOKEN (also checks webhook signatures)
	TwilioFrom                string // TWILIO_FROM: sending number, or
	TwilioMessagingServiceSID string // TWILIO_MESSAGING_SERVICE_SID
	TwilioAPIURL              string // TWILIO_API_URL: base of every Twilio API call; empty: https://api.twilio.com

	TimeZone *time.Location // ONSITE_TIME_ZONE: the recipients' time zone for every clock time in a text (IANA name)

	SMSCountries     phones.Countries // ONSITE_SMS_COUNTRIES: the only countries texted (and accepted as request phones)
	SMSPerPhoneDay   int              // ONSITE_SMS_PER_PHONE_DAY: texts a day to one phone (technicians' excepted; 0: no cap)
	SMSPerAccountDay int              // ONSITE_SMS_PER_ACCOUNT_DAY: texts a day for one customer account (0: no cap)

	OpsPassword string // ONSITE_OPS_PASSWORD: dashboard sign-in; generated under DataDir in embedded mode
	TileURL     string // ONSITE_TILE_URL: base-map tiles for the dashboard ({z}/{x}/{y}); empty: plain background

	RateLimitIP        int // ONSITE_RATE_LIMIT_IP: calls a minute per client address (0: off)
	RateLimitPrincipal int // ONSITE_RATE_LIMIT_PRINCIPAL: calls a minute per signed-in caller (0: off)
	// RateLimitProcesses is how many serve processes at most share the
	// limits: each may then let a share of a caller's headroom through
	// without asking Redis (ratelimit.WithLocalShare). 0 asks Redis on
	// every call.
	RateLimitProcesses int // ONSITE_RATE_LIMIT_PROCESSES

	WebhookAllowPrivate bool     // ONSITE_WEBHOOK_ALLOW_PRIVATE: let owners' webhooks reach private addresses (tests, labs)
	TrustedProxies      []string // ONSITE_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For names the client

	Workers     bool   // ONSITE_WORKERS: run the task workers inside `onsite serve`
	QueuePrefix string // ONSITE_QUEUE_PREFIX: put before queue names, to share one Redis between deployments
}

// Embedded reports whether Onsite runs in the single-node embedded mode for
// the database (SQLite file).
func (c Config) Embedded() bool { return c.DatabaseURL == "" }

// Twilio reports whether SMS go out through Twilio (or to the log).
func (c Config) Twilio() bool { return c.TwilioAccountSID != "" }

// EmbeddedRedis reports whether the in-process Redis-compatible server is used.
func (c Config) EmbeddedRedis() bool { return c.RedisURL == "" }

// RedisCluster reports whether REDIS_URL names a Redis Cluster.
func (c Config) RedisCluster() bool { return strings.Contains(c.RedisURL, "+cluster://") }

// SQLitePath is the database file used in embedded mode.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "onsite.db") }

type setting struct {
	name  string
	help  string
	apply func(c *Config, v string) error
}

// settings lists every variable Onsite reads; Load rejects any other ONSITE_*.
var settings = []setting{
	{"ONSITE_ADDR", "listen address host:port", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("want host:port: %w", err)
		}
		c.Addr = v
		return nil
	}},
	{"ONSITE_DATA_DIR", "directory for the embedded database and secrets", func(c *Config, v string) error {
		c.DataDir = v
		return nil
	}},
	{"DATABASE_URL", "postgres://… (empty: embedded SQLite)", func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("want a postgres:// URL")
		}
		c.DatabaseURL = v
		return nil
	}},
	{"REDIS_URL", "redis://host:port/db, or redis+cluster://host1:port1,host2:port2,… for a Redis Cluster (empty: embedded)", func(c *Config, v string) error {
		if _, _, err := ParseRedisURL(v); err != nil {
			return err
		}
		c.RedisURL = v
		return nil
	}},
	{"ONSITE_JWT_SECRET", "HS256 signing key, at least 32 bytes", func(c *Config, v string) error {
		if len(v) < 32 {
			return fmt.Errorf("must be at least 32 bytes long")
		}
		c.JWTSecret = v
		return nil
	}},
	{"ONSITE_LOG_LEVEL", "debug, info, warn or error", func(c *Config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
	{"ONSITE_LOG_FORMAT", "text or json", func(c *Config, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("want text or json")
		}
		c.LogFormat = v
		return nil
	}},
	{"ONSITE_BODY_LIMIT", "largest request body in bytes", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			return fmt.Errorf("want a number of bytes >= 1024")
		}
		c.BodyLimit = n
		return nil
	}},
	{"ONSITE_PUBLIC_URL", "public base URL for links and callbacks", func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("want an http(s):// URL")
		}
		c.PublicURL = strings.TrimRight(v, "/")
		return nil
	}},
	{"ONSITE_SLA", "time promised for ASAP requests", durationSetting(func(c *Config) *time.Duration { return &c.SLA })},
	{"ONSITE_GIVE_UP", "searching longer than this after creation makes a request unfulfilled", durationSetting(func(c *Config) *time.Duration { return &c.GiveUp })},
	{"ONSITE_LATE_AFTER", "how far a predicted arrival may slip past what the customer was told before they are texted a new ETA (running late)", durationSetting(func(c *Config) *time.Duration { return &c.LateAfter })},
	{"ONSITE_WINDOW_LEAD", "a windowed request starts searching this long before its window", durationSetting(func(c *Config) *time.Duration { return &c.WindowLead })},
	{"ONSITE_JOB_LENGTH", "planned time on site of a job, so work taken before a booked window leaves time for it", durationSetting(func(c *Config) *time.Duration { return &c.JobLength })},
	{"ONSITE_OFFER_TIMEOUT", "how long an offer stays open", durationSetting(func(c *Config) *time.Duration { return &c.OfferTimeout })},
	{"ONSITE_OFFER_STRATEGY", "batch, sequential or wave", func(c *Config, v string) error {
		if v != "sequential" && v != "wave" && v != "batch" {
			return fmt.Errorf("want batch, sequential or wave")
		}
		c.OfferStrategy = v
		return nil
	}},
	{"ONSITE_BATCH_WINDOW", "how often the batch strategy assigns (1s to 5m)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 5*time.Minute {
			return fmt.Errorf("want a duration from 1s to 5m")
		}
		c.BatchWindow = d
		return nil
	}},
	{"ONSITE_BATCH_URGENCY", "batch: minutes of cost per minute a request has left, up to the SLA; the least time left wins contested technicians (0 to 10, 0: off)", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 10) {
			return fmt.Errorf("want a number from 0 to 10")
		}
		c.BatchUrgency = f
		return nil
	}},
	{"ONSITE_REGION_RESOLUTION", "H3 resolution (1 to 7) of the regions whose batch rounds may run on different processes; 0 keeps one region", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 7 {
			return fmt.Errorf("want a whole number from 0 to 7")
		}
		c.RegionRes = n
		return nil
	}},
	{"ONSITE_WAVE_SIZE", "offers sent at once by the wave strategy", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			return fmt.Errorf("want a whole number from 1 to 50")
		}
		c.WaveSize = n
		return nil
	}},
	{"ONSITE_PING_FLUSH", "how often buffered position reports are written (1ms to 5s)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Millisecond || d > 5*time.Second {
			return fmt.Errorf("want a duration from 1ms to 5s")
		}
		c.PingFlush = d
		return nil
	}},
	{"ONSITE_ARRIVAL_RADIUS", "metres from the site within which a technician counts as there (10 to 5000)", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "m"), 64)
		if err != nil || !(f >= 10 && f <= 5000) {
			return fmt.Errorf("want a number of metres from 10 to 5000")
		}
		c.ArrivalRadiusM = f
		return nil
	}},
	{"ONSITE_NO_SHOW_WAIT", "how long a technician at an empty door waits before the request closes as a no-show (5s to 2h)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 5*time.Second || d > 2*time.Hour {
			return fmt.Errorf("want a duration from 5s to 2h")
		}
		c.NoShowWait = d
		return nil
	}},
	{"ONSITE_CONFIRM_TTL", "a device's request its owner has not confirmed within this is cancelled (5s to 30 days)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 5*time.Second || d > 30*24*time.Hour {
			return fmt.Errorf("want a duration from 5s to 720h")
		}
		c.ConfirmTTL = d
		return nil
	}},
	{"ONSITE_SERVICE_AREAS", "named service areas the KPIs are reported by: name=cell,cell;name=cell (H3 cells, resolution 0 to 8)", func(c *Config, v string) error {
		areas, err := geo.ParseAreas(v)
		if err != nil {
			return err
		}
		c.ServiceAreas = areas
		return nil
	}},
	{"ONSITE_STALE_AFTER", "no position report for this long takes a technician off duty", durationSetting(func(c *Config) *time.Duration { return &c.StaleAfter })},
	{"TWILIO_ACCOUNT_SID", "Twilio account (with TWILIO_AUTH_TOKEN; empty: SMS go to the log)", func(c *Config, v string) error {
		if !strings.HasPrefix(v, "AC") {
			return fmt.Errorf("want an account SID starting with AC")
		}
		c.TwilioAccountSID = v
		return nil
	}},
	{"TWILIO_AUTH_TOKEN", "Twilio auth token; also verifies X-Twilio-Signature", func(c *Config, v string) error {
		c.TwilioAuthToken = v
		return nil
	}},
	{"TWILIO_FROM", "sending phone number (E.164)", func(c *Config, v string) error {
		if !strings.HasPrefix(v, "+") {
			return fmt.Errorf("want a number in E.164 form")
		}
		c.TwilioFrom = v
		return nil
	}},
	{"TWILIO_MESSAGING_SERVICE_SID", "messaging service instead of TWILIO_FROM", func(c *Config, v string) error {
		if !strings.HasPrefix(v, "MG") {
			return fmt.Errorf("want a messaging service SID starting with MG")
		}
		c.TwilioMessagingServiceSID = v
		return nil
	}},
	{"TWILIO_API_URL", "base URL of the Twilio API (a stand-in or proxy for tests and staging; empty: https://api.twilio.com)", func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("want an http(s):// base URL without query")
		}
		c.TwilioAPIURL = strings.TrimRight(v, "/")
		return nil
	}},
	{"ONSITE_TIME_ZONE", "IANA time zone of every clock time in a text, such as Europe/Zurich", func(c *Config, v string) error {
		loc, err := parseTimeZone(v)
		if err != nil {
			return err
		}
		c.TimeZone = loc
		return nil
	}},
	{"ONSITE_SMS_COUNTRIES", "comma-separated countries Onsite texts and accepts request phones of: ISO codes (CH, DE, …) or calling codes (+41, …)", func(c *Config, v string) error {
		countries, err := phones.ParseCountries(v)
		if err != nil {
			return err
		}
		c.SMSCountries = countries
		return nil
	}},
	{"ONSITE_SMS_PER_PHONE_DAY", "texts a day (UTC) to one phone, technicians' excepted (0: no cap)", intSetting(func(c *Config) *int { return &c.SMSPerPhoneDay })},
	{"ONSITE_SMS_PER_ACCOUNT_DAY", "texts a day (UTC) for one customer account (0: no cap)", intSetting(func(c *Config) *int { return &c.SMSPerAccountDay })},
	{"ONSITE_OPS_PASSWORD", "dashboard sign-in password (at least 12 characters)", func(c *Config, v string) error {
		if len(v) < 12 {
			return fmt.Errorf("must be at least 12 characters long")
		}
		c.OpsPassword = v
		return nil
	}},
	{"ONSITE_TILE_URL", "base-map tile URL for the dashboard, with {z}/{x}/{y}", func(c *Config, v string) error {
		if !strings.Contains(v, "{z}") || !strings.Contains(v, "{x}") || !strings.Contains(v, "{y}") {
			return fmt.Errorf("want a tile URL template with {z}, {x} and {y}")
		}
		c.TileURL = v
		return nil
	}},
	{"ONSITE_RATE_LIMIT_IP", "calls a minute per client address (0: off)", intSetting(func(c *Config) *int { return &c.RateLimitIP })},
	{"ONSITE_RATE_LIMIT_PRINCIPAL", "calls a minute per signed-in caller (0: off)", intSetting(func(c *Config) *int { return &c.RateLimitPrincipal })},
	{"ONSITE_RATE_LIMIT_PROCESSES", "serve processes sharing the rate limits at most; each spends a share of a caller's headroom without asking Redis (0: ask on every call)", intSetting(func(c *Config) *int { return &c.RateLimitProcesses })},
	{"ONSITE_WEBHOOK_ALLOW_PRIVATE", "let webhooks reach loopback and private addresses (true/false)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		c.WebhookAllowPrivate = b
		return nil
	}},
	{"ONSITE_TRUSTED_PROXIES", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client", func(c *Config, v string) error {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if _, _, err := net.ParseCIDR(part); err != nil {
				return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", part)
			}
			c.TrustedProxies = append(c.TrustedProxies, part)
		}
		return nil
	}},
	{"ONSITE_WORKERS", "run the task workers inside serve (true/false)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		c.Workers = b
		return nil
	}},
	{"ONSITE_QUEUE_PREFIX", "prefix of task queue names", func(c *Config, v string) error {
		for _, r := range v {
			if !(r == '-' || r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
				return fmt.Errorf("use only letters, digits, dashes, underscores and colons")
			}
		}
		c.QueuePrefix = v
		return nil
	}},
	{"ONSITE_MAX_SEARCH_KM", "widest candidate search radius in km", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= 500) {
			return fmt.Errorf("want a number of km in (0, 500]")
		}
		c.MaxSearchKm = f
		return nil
	}},
}

func intSetting(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return fmt.Errorf("want a whole number from 0 to 1000000")
		}
		*field(c) = n
		return nil
	}
}

func durationSetting(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 30s or 60m")
		}
		*field(c) = d
		return nil
	}
}

// DefaultTimeZone is ONSITE_TIME_ZONE when unset.
const DefaultTimeZone = "Europe/Zurich"

// parseTimeZone reads an IANA time zone name. "Local" is refused: the zone of
// a text must not depend on the host it was rendered on.
func parseTimeZone(v string) (*time.Location, error) {
	if v == "Local" {
		return nil, fmt.Errorf("want an IANA time zone name such as %s, not Local", DefaultTimeZone)
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, fmt.Errorf("want an IANA time zone name such as %s: %v", DefaultTimeZone, err)
	}
	return loc, nil
}

func mustTimeZone(v string) *time.Location {
	loc, err := parseTimeZone(v)
	if err != nil {
		panic(err)
	}
	return loc
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Addr:               "127.0.0.1:8080",
		DataDir:            "data",
		LogLevel:           slog.LevelInfo,
		LogFormat:          "text",
		BodyLimit:          1 << 20,
		SLA:                60 * time.Minute,
		WindowLead:         45 * time.Minute,
		JobLength:          time.Hour,
		OfferStrategy:      "batch",
		BatchWindow:        5 * time.Second,
		BatchUrgency:       1,
		OfferTimeout:       5 * time.Minute,
		WaveSize:           3,
		MaxSearchKm:        40,
		ArrivalRadiusM:     250,
		NoShowWait:         10 * time.Minute,
		ConfirmTTL:         24 * time.Hour,
		Workers:            true,
		StaleAfter:         15 * time.Minute,
		PingFlush:          100 * time.Millisecond,
		RateLimitIP:        1200,
		RateLimitPrincipal: 600,
		RateLimitProcesses: 8,
		SMSCountries:       phones.MustParseCountries(phones.DefaultCountries),
		TimeZone:           mustTimeZone(DefaultTimeZone),
		SMSPerPhoneDay:     20,
		SMSPerAccountDay:   50,
	}
}

// Load reads the settings from environ (KEY=value strings, as os.Environ
// returns). A malformed value or an unknown ONSITE_* variable is an error
// naming it.
func Load(environ []string) (Config, error) {
	c := Default()
	known := make(map[string]setting, len(settings))
	for _, s := range settings {
		known[s.name] = s
	}
	var unknown []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		s, isKnown := known[k]
		if !isKnown {
			if strings.HasPrefix(k, "ONSITE_") {
				unknown = append(unknown, k)
			}
			continue
		}
		if v == "" {
			continue
		}
		if err := s.apply(&c, v); err != nil {
			return Config{}, fmt.Errorf("config: %s=%q: %v", k, v, err)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Config{}, fmt.Errorf("config: unknown setting %s (known: %s)", strings.Join(unknown, ", "), strings.Join(Names(), ", "))
	}
	if (c.TwilioAccountSID == "") != (c.TwilioAuthToken == "") {
		return Config{}, fmt.Errorf("config: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together")
	}
	if c.TwilioAccountSID != "" && c.TwilioFrom == "" && c.TwilioMessagingServiceSID == "" {
		return Config{}, fmt.Errorf("config: TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required with TWILIO_ACCOUNT_SID")
	}
	if c.GiveUp == 0 {
		c.GiveUp = c.SLA
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	return c, nil
}

// Names lists the variables Onsite reads.
func Names() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.name
	}
	return out
}

// Help returns one line per setting for the README and --help.
func Help() string {
	var b strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&b, "  %-22s %s\n", s.name, s.help)
	}
	return b.String()
}
