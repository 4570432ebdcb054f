// Command onsite runs the Onsite dispatch platform: `onsite serve`,
// `onsite migrate`, `onsite token`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "onsite:", err)
		os.Exit(1)
	}
}

const usage = `usage: onsite <command> [flags]

commands:
  serve     run the HTTP API, the dashboard and the workers
  worker    run only the task workers (outbox relay, asynq handlers, periodic sweep)
  demo      run embedded and feed it a simulated city through the API (for the dashboard)
  simulate  compare dispatch strategies on a simulated day: onsite simulate --scenario FILE
  plan      recommend technicians on duty per hour for a target: onsite plan --scenario FILE
  migrate   apply database migrations and exit
  token     print a bearer token: onsite token --role ops --subject alice

settings (environment variables):
`

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage+settingsHelp())
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], environ, stdout, stderr)
	case "worker":
		return worker(ctx, args[1:], environ, stderr)
	case "demo":
		return demo(ctx, args[1:], environ, stdout, stderr)
	case "simulate":
		return simulate(args[1:], stdout, stderr)
	case "plan":
		return plan(ctx, args[1:], environ, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], environ, stderr)
	case "token":
		return token(args[1:], environ, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage+settingsHelp())
		return nil
	}
	fmt.Fprint(stderr, usage+settingsHelp())
	return fmt.Errorf("unknown command %q", args[0])
}
