// Package app assembles Onsite: configuration → database → migrations →
// Redis → services → HTTP. It is the one package that knows every other.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/onsite/onsite/api"
	"github.com/onsite/onsite/dispatch"
	"github.com/onsite/onsite/docs"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/config"
	"github.com/onsite/onsite/internal/db"
	"github.com/onsite/onsite/internal/errs"
	"github.com/onsite/onsite/internal/httpx"
	"github.com/onsite/onsite/internal/idempotency"
	"github.com/onsite/onsite/internal/ratelimit"
	"github.com/onsite/onsite/jobs"
	"github.com/onsite/onsite/live"
	"github.com/onsite/onsite/machines"
	mobileapi "github.com/onsite/onsite/mobile-api"
	"github.com/onsite/onsite/notify"
	"github.com/onsite/onsite/signin"
	"github.com/onsite/onsite/technicians"
	"github.com/onsite/onsite/web"
	"github.com/onsite/onsite/webhooks"
)

// App is a running Onsite node's parts.
type App struct {
	Config      config.Config
	Log         *slog.Logger
	DB          *db.DB
	Redis       redis.UniversalClient // one server or a Redis Cluster (REDIS_URL)
	Issuer      *auth.Issuer
	Technicians *technicians.Service
	Dispatch    *dispatch.Service
	Notifier    *notify.Notifier
	Hub         *live.Hub
	Pings       *technicians.PingBuffer
	Machines    *machines.Service
	Webhooks    *webhooks.Service
	Idempotency *idempotency.Store // answers to Idempotency-Key calls, in the database
	Echo        *echo.Echo
	Routes      []httpx.Route
	OpsPassword string // the dashboard password in force
	secret      []byte // signs tokens and links

	mini        *miniredis.Miniredis
	redisSingle *redis.Options        // REDIS_URL names one server, or
	redisNodes  *redis.ClusterOptions // a Redis Cluster
	sweepEvery  time.Duration         // 0: the worker's default
	streamRedis redis.UniversalClient // the live streams' own pool
	registry    *prometheus.Registry
	sms         providerHealth // the Twilio account check, for /readyz
	bg          sync.WaitGroup
	stopBG      context.CancelFunc
}

// Clock is time.Now in production.
type Clock func() time.Time

// Option changes how New builds the app.
type Option func(*options)

type options struct {
	webhookHTTP  *http.Client
	webhookWaker webhooks.Waker
	sweepEvery   time.Duration
}

// WithWebhookWaker sets what wakes owners' webhook deliveries up instead of
// asynq tasks (tests run the attempts themselves on their own clock).
func WithWebhookWaker(w webhooks.Waker) Option { return func(o *options) { o.webhookWaker = w } }

// WithSweepEvery sets the period of the sweep that repairs lost tasks
// (default 30 s; fault tests shorten it).
func WithSweepEvery(d time.Duration) Option { return func(o *options) { o.sweepEvery = d } }

// New opens the stores, applies migrations and builds the HTTP server.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, now Clock, opts ...Option) (_ *App, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	a := &App{Config: cfg, Log: log, registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if cfg.Embedded() || cfg.EmbeddedRedis() {
		log.Warn("embedded single-node mode: fine for trying Onsite on one machine, not for production",
			"sqlite", cfg.Embedded(), "embedded_redis", cfg.EmbeddedRedis(), "data_dir", cfg.DataDir)
	}
	bgCtx, stop := context.WithCancel(context.Background())
	a.stopBG = stop
	// Credentials Twilio refuses stop the start before anything else.
	sender, err := newSender(cfg, log)
	if err != nil {
		return nil, err
	}
	if tw, ok := sender.(*notify.TwilioSender); ok {
		if err := a.checkTwilio(ctx, bgCtx, tw); err != nil {
			return nil, err
		}
	} else {
		log.Warn("no Twilio credentials: SMS are written to the log, not sent")
	}
	if a.DB, err = OpenDB(ctx, cfg); err != nil {
		return nil, err
	}
	if err = db.Migrate(ctx, a.DB, log); err != nil {
		return nil, err
	}
	if err = a.openRedis(bgCtx); err != nil {
		return nil, err
	}
	secret, err := JWTSecret(cfg)
	if err != nil {
		return nil, err
	}
	a.Issuer = auth.NewIssuer(secret)
	a.secret = secret
	a.Technicians = technicians.NewService(a.DB, now).WithTimeZone(cfg.TimeZone)
	a.Dispatch = dispatch.NewService(a.DB, dispatch.Config{
		SLA: cfg.SLA, GiveUp: cfg.GiveUp, LateAfter: cfg.LateAfter, WindowLead: cfg.WindowLead, JobLength: cfg.JobLength, OfferStrategy: cfg.OfferStrategy, BatchWindow: cfg.BatchWindow,
		BatchUrgency: cfg.BatchUrgency,
		OfferTimeout: cfg.OfferTimeout, WaveSize: cfg.WaveSize, MaxSearchKm: cfg.MaxSearchKm,
		ArrivalRadiusM: cfg.ArrivalRadiusM, NoShowWait: cfg.NoShowWait, ConfirmTTL: cfg.ConfirmTTL, Areas: cfg.ServiceAreas,
		Log: log, RegionResolution: cfg.RegionRes, SMSCountries: cfg.SMSCountries, TimeZone: cfg.TimeZone,
	}, now)
	a.DB.OnListenError(func(channel string, err error) {
		log.Warn("change feed: listening lost, reconnecting", "channel", channel, "err", err)
	})
	if err = a.Dispatch.Fleet().Load(ctx); err != nil {
		return nil, err
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.Dispatch.Fleet().Run(bgCtx)
	}()
	a.Notifier = notify.NewNotifier(a.DB, sender, cfg.PublicURL+"/v1/webhooks/twilio/status",
		notify.Guards{Countries: cfg.SMSCountries, PerPhoneDay: cfg.SMSPerPhoneDay, PerAccountDay: cfg.SMSPerAccountDay}, log)
	a.Notifier.WithCheck(jobs.Check(a.Dispatch))
	a.Notifier.WithWake(jobs.NewWaker(a.Redis, cfg.QueuePrefix).Message)
	a.sweepEvery = o.sweepEvery
	a.streamRedis = a.newRedis(true)
	a.Hub = live.NewHub(a.Redis, a.streamRedis, cfg.QueuePrefix)
	opsPassword := cfg.OpsPassword
	if opsPassword == "" && cfg.Embedded() {
		if opsPassword, err = auth.LoadOrCreatePassword(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if opsPassword == "" {
		log.Warn("ONSITE_OPS_PASSWORD is not set: nobody can sign in to the dashboard")
	}
	a.OpsPassword = opsPassword
	a.Machines = machines.NewService(a.DB, now)
	hookClient := o.webhookHTTP
	if hookClient == nil {
		hookClient = webhooks.SafeClient(cfg.WebhookAllowPrivate)
	}
	a.Webhooks = webhooks.NewService(a.DB, hookClient, now)
	if cfg.WebhookAllowPrivate {
		a.Webhooks.AllowPrivate()
	}
	a.Idempotency = idempotency.NewStore(a.DB, now)
	waker := o.webhookWaker
	if waker == nil {
		waker = jobs.NewHookWaker(a.Redis, cfg.QueuePrefix, log)
	}
	a.Webhooks.WithWaker(waker)
	opsAPI := api.New(a.Technicians, a.Dispatch, a.Hub).WithTrackLinks(secret, cfg.PublicURL)
	signIn := signin.NewService(a.DB, a.Issuer, a.Notifier, ratelimit.NewWindow(a.Redis, cfg.QueuePrefix, 10*time.Minute), secret, cfg.SMSCountries, now)
	a.Pings = technicians.NewPingBuffer(a.DB, cfg.PingFlush, a.techniciansMoved, log)
	a.Routes = append(opsAPI.Routes(), mobileapi.New(a.Technicians, a.Dispatch, a.Hub, signIn, a.Pings, secret, cfg.PublicURL).Routes()...)
	a.Routes = append(a.Routes, api.NewOps(opsAPI, a.Issuer, a.Hub, opsPassword, cfg.TileURL).Routes()...)
	a.Routes = append(a.Routes, api.NewMachineKeys(a.Machines).Routes()...)
	a.Routes = append(a.Routes, mobileapi.NewWebhooks(a.Webhooks).Routes()...)
	a.Routes = append(a.Routes, api.NewWebhooks(a.Technicians, a.Dispatch, a.Notifier, cfg.TwilioAuthToken, cfg.PublicURL).Routes()...)
	a.Echo = a.buildEcho()
	return a, nil
}

// newRedis returns a client for REDIS_URL: a plain client for one server, a
// cluster client (which follows MOVED/ASK redirections and splits pipelines
// by node) for a Redis Cluster. With streams it is the pool of the live
// streams: each open stream holds a connection in a blocking read, so they
// get a large pool of their own (in a cluster, per node).
func (a *App) newRedis(streams bool) redis.UniversalClient {
	if a.redisNodes != nil {
		o := *a.redisNodes
		if streams {
			o.PoolSize, o.MinIdleConns = 1024, 0
		}
		return redis.NewClusterClient(&o)
	}
	o := *a.redisSingle
	if streams {
		o.PoolSize, o.MinIdleConns = 1024, 0
	}
	return redis.NewClient(&o)
}

// redisAddrs names the configured Redis servers (for messages).
func (a *App) redisAddrs() string {
	if a.redisNodes != nil {
		return "cluster " + strings.Join(a.redisNodes.Addrs, ",")
	}
	return a.redisSingle.Addr
}

// Position is what the dashboard's stream carries for a written ping.
type Position struct {
	ID  string    `json:"id"`
	Lat float64   `json:"lat"`
	Lng float64   `json:"lng"`
	At  time.Time `json:"at"`
}

// techniciansMoved follows written positions: the ETA of live jobs, and the
// dashboard.
func (a *App) techniciansMoved(ctx context.Context, moved []technicians.Moved) {
	items := make([]any, 0, len(moved))
	for _, m := range moved {
		if m.ActiveJobs > 0 {
			if err := a.Dispatch.TechnicianMoved(ctx, m.TechnicianID, m.Point); err != nil {
				a.Log.Warn("update eta", "technician", m.TechnicianID, "err", err)
			}
		}
		items = append(items, Position{ID: m.TechnicianID, Lat: m.Point.Lat, Lng: m.Point.Lng, At: m.At})
	}
	if err := a.Hub.PublishEach(ctx, "position", items, live.TopicOps); err != nil {
		a.Log.Warn("publish positions", "err", err)
	}
}

// newSender is Twilio when configured, the log sender otherwise.
func newSender(cfg config.Config, log *slog.Logger) (notify.Sender, error) {
	if !cfg.Twilio() {
		return &notify.LogSender{Log: log}, nil
	}
	tw, err := notify.NewTwilioSender(notify.TwilioConfig{AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken,
		From: cfg.TwilioFrom, MessagingServiceSID: cfg.TwilioMessagingServiceSID, APIURL: cfg.TwilioAPIURL})
	if err != nil {
		return nil, fmt.Errorf("config: TWILIO_API_URL: %w", err)
	}
	return tw, nil
}

// twilioCheckTimeout bounds one check of the Twilio account.
const twilioCheckTimeout = 5 * time.Second

// checkTwilio fetches the Twilio account before Onsite starts: credentials
// Twilio refuses stop the start with a message saying so; a Twilio that
// cannot be reached lets Onsite start with the SMS provider reported failing
// by /readyz, checked again in the background (1 s, doubling, at most a
// minute apart) until a check succeeds.
func (a *App) checkTwilio(ctx, bgCtx context.Context, tw *notify.TwilioSender) error {
	check := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, twilioCheckTimeout)
		defer cancel()
		return tw.CheckAccount(ctx)
	}
	err := check(ctx)
	if errors.Is(err, notify.ErrRejected) {
		return fmt.Errorf("config: Twilio refused TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, so no SMS could be sent; not starting: %w", err)
	}
	if err == nil {
		a.Log.Info("twilio account checked", "account", a.Config.TwilioAccountSID)
		return nil
	}
	a.sms.set(err)
	a.Log.Error("twilio cannot be reached: starting anyway, SMS fail and /readyz says so until a check succeeds", "err", err)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		for wait := time.Second; ; wait = min(2*wait, time.Minute) {
			select {
			case <-bgCtx.Done():
				return
			case <-time.After(wait):
			}
			err := check(bgCtx)
			if bgCtx.Err() != nil {
				return
			}
			a.sms.set(err)
			if err == nil {
				a.Log.Info("twilio reachable: the SMS provider is ready", "account", a.Config.TwilioAccountSID)
				return
			}
			a.Log.Warn("twilio check failed", "err", err, "next_in", min(2*wait, time.Minute))
		}
	}()
	return nil
}

// providerHealth is the last check of the SMS provider (nil: fine).
type providerHealth struct {
	mu  sync.Mutex
	err error
}

func (h *providerHealth) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

func (h *providerHealth) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// OpenDB opens PostgreSQL or, with no DATABASE_URL, the embedded SQLite file.
func OpenDB(ctx context.Context, cfg config.Config) (*db.DB, error) {
	if cfg.Embedded() {
		return db.OpenSQLite(ctx, cfg.SQLitePath())
	}
	return db.OpenPostgres(ctx, cfg.DatabaseURL)
}

// JWTSecret returns the configured key or, in embedded mode, the one kept
// under the data directory.
func JWTSecret(cfg config.Config) ([]byte, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), nil
	}
	if !cfg.Embedded() {
		return nil, errors.New("config: ONSITE_JWT_SECRET is required when DATABASE_URL is set")
	}
	return auth.LoadOrCreateSecret(cfg.DataDir)
}

func (a *App) openRedis(ctx context.Context) error {
	if a.Config.EmbeddedRedis() {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start embedded redis: %w", err)
		}
		a.mini = m
		a.redisSingle = &redis.Options{Addr: m.Addr()}
		// miniredis expires keys only when told time has passed.
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			last := time.Now()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					m.FastForward(now.Sub(last))
					last = now
				}
			}
		}()
		a.Log.Info("embedded redis-compatible server started", "addr", m.Addr())
	} else {
		single, cluster, err := config.ParseRedisURL(a.Config.RedisURL)
		if err != nil {
			return fmt.Errorf("config: REDIS_URL: %w", err)
		}
		a.redisSingle, a.redisNodes = single, cluster
	}
	a.Redis = a.newRedis(false)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Not just a PING of one node: the task queues' keys must take writes
	// (in a cluster, on the nodes that own their slots).
	if err := jobs.QueuesWritable(pingCtx, a.Redis, a.Config.QueuePrefix); err != nil {
		return fmt.Errorf("redis at %s: %w", a.redisAddrs(), err)
	}
	return nil
}

func (a *App) buildEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Client addresses (rate limits) come from the connection, not from
	// headers a client can set, unless the connection is a trusted proxy.
	e.IPExtractor = echo.ExtractIPDirect()
	if len(a.Config.TrustedProxies) > 0 {
		var trust []echo.TrustOption
		for _, cidr := range a.Config.TrustedProxies {
			_, n, _ := net.ParseCIDR(cidr)
			trust = append(trust, echo.TrustIPRange(n))
		}
		trust = append(trust, echo.TrustLoopback(false), echo.TrustPrivateNet(false), echo.TrustLinkLocal(false))
		e.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)
	}
	e.HTTPErrorHandler = httpx.ErrorHandlerWithOutages(a.Log, db.Unavailable)
	m := newHTTPMetrics(a.registry)
	e.Use(middleware.RequestID())
	e.Use(a.logRequests)
	e.Use(m.middleware)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			a.Log.Error("panic", "err", err, "stack", string(stack), "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			return errs.E(errs.Internal, "panic")
		},
	}))
	e.Use(middleware.BodyLimit(fmt.Sprintf("%dB", a.Config.BodyLimit)))
	e.Pre(httpx.CleanInput) // before routing: a path with a NUL is malformed, not "not found"

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", a.ready)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", docs.OpenAPI) })
	// The ops dashboard: the page and its static files.
	dashboard := echo.WrapHandler(web.Handler())
	e.GET("/", dashboard)
	e.GET("/index.html", dashboard)
	e.GET("/static/*", dashboard)
	httpx.Register(e, httpx.Auth{Issuer: a.Issuer, Keys: a.Machines}, a.Routes, ratelimit.New(a.Redis, a.Config.QueuePrefix).WithLocalShare(a.Config.RateLimitProcesses),
		httpx.Limits{PerIP: a.Config.RateLimitIP, PerPrincipal: a.Config.RateLimitPrincipal},
		httpx.Idempotent(a.Idempotency, a.Log))
	return e
}

func (a *App) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "redis": "ok", "sms": "ok"}
	ok := true
	if !a.Config.Twilio() {
		checks["sms"] = "log sender (SMS are written to the log)"
	} else if err := a.sms.get(); err != nil {
		checks["sms"], ok = err.Error(), false
	}
	// What is down, never how it is reached (hosts, users, names): the
	// error goes to the log.
	if err := a.DB.Ping(ctx); err != nil {
		a.Log.Warn("ready: database", "err", err)
		checks["database"], ok = "unavailable", false
	}
	// Ready means tasks can be queued: a write routed like each asynq
	// queue's keys (on a cluster, to the node owning that queue's slot),
	// not a PING of whichever node answers first.
	if err := jobs.QueuesWritable(ctx, a.Redis, a.Config.QueuePrefix); err != nil {
		a.Log.Warn("ready: redis", "err", err)
		checks["redis"], ok = "unavailable", false
	}
	if !ok {
		c.Response().Header().Set("Retry-After", "5")
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": checks})
}

func (a *App) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		if !a.Log.Enabled(c.Request().Context(), level) {
			return nil // the line would be dropped: build none of it
		}
		a.Log.Log(c.Request().Context(), level, "http",
			"method", c.Request().Method, "path", c.Request().URL.Path, "route", c.Path(), "status", status,
			"took", time.Since(start), "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onsite_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "onsite_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(c.Request().Method, route, strconv.Itoa(c.Response().Status)).Inc()
		m.latency.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// Worker returns the task workers over this app's stores.
func (a *App) Worker() *jobs.Worker {
	w := jobs.NewWorker(a.DB, a.Redis, a.Dispatch, a.Config.QueuePrefix, a.Log)
	w.WithMessages(jobs.NewMessages(a.Dispatch, a.Notifier, a.Config.TimeZone, a.secret, a.Config.PublicURL))
	w.WithLive(jobs.NewLive(a.Dispatch, a.Technicians, a.Hub))
	w.WithHooks(jobs.NewHooks(a.Webhooks, a.Log))
	w.WithTechnicians(a.Technicians, a.Config.StaleAfter)
	w.WithMetrics(a.registry)
	w.WithCleanup("idempotency:expire", a.Idempotency.Expire)
	w.WithCleanup("sms:counts", a.Notifier.Cleanup)
	if a.sweepEvery > 0 {
		w.SweepEvery(a.sweepEvery)
	}
	if a.Config.OfferStrategy == "batch" {
		w.BatchEvery(a.Config.BatchWindow)
	}
	return w
}

// RunWorkers runs the task workers until ctx ends.
func (a *App) RunWorkers(ctx context.Context) error {
	return a.Worker().Run(ctx)
}

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully. With
// workers enabled it runs them beside the HTTP server.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pingsDone := make(chan struct{})
	go func() { defer close(pingsDone); a.Pings.Run(ctx) }()
	defer func() { cancel(); <-pingsDone }()
	if !a.Config.Workers {
		return a.serveHTTP(ctx, ln)
	}
	workerErr := make(chan error, 1)
	go func() { workerErr <- a.RunWorkers(ctx) }()
	err := a.serveHTTP(ctx, ln)
	cancel()
	if werr := <-workerErr; werr != nil && err == nil {
		err = werr
	}
	return err
}

// serveHTTP answers HTTP on ln until ctx ends, then shuts down gracefully.
func (a *App) serveHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // streams lift it per response
		IdleTimeout:       120 * time.Second,
	}
	srv.RegisterOnShutdown(a.Hub.Close) // streams would hold the shutdown up
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	select {
	case err := <-errCh:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errCh; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// Close stops background work and closes the stores.
func (a *App) Close() {
	if a.stopBG != nil {
		a.stopBG()
	}
	a.bg.Wait()
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.streamRedis != nil {
		_ = a.streamRedis.Close()
	}
	if a.mini != nil {
		a.mini.Close()
	}
	if a.DB != nil {
		_ = a.DB.Close()
	}
}
