package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/onsite/onsite/internal/app"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/config"
	"github.com/onsite/onsite/internal/db"
)

func settingsHelp() string { return config.Help() }

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// start parses a command's flags, loads the settings and assembles Onsite;
// the caller closes the app.
func start(ctx context.Context, fs *flag.FlagSet, args, environ []string, logTo io.Writer) (*app.App, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, newLogger(cfg, logTo), time.Now)
}

func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a, err := start(ctx, fs, args, environ, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	cfg, log := a.Config, a.Log
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	base := "http://" + ln.Addr().String()
	log.Info("onsite is serving", "addr", ln.Addr().String(), "dashboard", base+"/", "api", base+"/v1", "openapi", base+"/openapi.yaml")
	fmt.Fprintf(stdout, "Onsite is serving on %s\n  dashboard: %s/\n  API:       %s/v1  (OpenAPI: %s/openapi.yaml)\n", base, base, base, base)
	if cfg.Embedded() && cfg.OpsPassword == "" {
		fmt.Fprintf(stdout, "  dashboard sign-in: any name, password %s (kept in %s/ops.password)\n", a.OpsPassword, cfg.DataDir)
	}
	fmt.Fprintf(stdout, "  an API token: go run ./cmd/onsite token --role ops --subject you\n")
	return a.Serve(ctx, ln)
}

func worker(ctx context.Context, args, environ []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a, err := start(ctx, fs, args, environ, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	a.Log.Info("onsite worker running")
	return a.RunWorkers(ctx)
}

func migrate(ctx context.Context, args, environ []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	down := fs.Bool("down", false, "roll every migration back")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	d, err := app.OpenDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	var opts []db.MigrateOption
	if *down {
		opts = append(opts, db.Down())
	}
	if err := db.Migrate(ctx, d, log, opts...); err != nil {
		return err
	}
	log.Info("migrations done", "dialect", d.Dialect)
	return nil
}

func token(args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "customer, technician, ops or machine")
	subject := fs.String("subject", "", "who the token is for (customer id, technician id, ops user)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("token: --role: %w", err)
	}
	if *subject == "" {
		return fmt.Errorf("token: --subject is required")
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: --ttl must be positive")
	}
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	secret, err := app.JWTSecret(cfg)
	if err != nil {
		return err
	}
	tok, err := auth.NewIssuer(secret).Issue(auth.Principal{Role: r, Subject: *subject}, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
