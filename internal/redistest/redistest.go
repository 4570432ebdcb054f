// Package redistest starts a throwaway Redis Cluster of real redis-server
// processes for a test: free ports, a temporary directory per node, torn
// down at cleanup. Tests skip (with a message saying why) when redis-server
// or redis-cli is not installed.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a running Redis Cluster of masters without replicas.
type Cluster struct {
	Addrs []string // host:port of every node

	t     testing.TB
	mu    sync.Mutex
	procs []*exec.Cmd
}

// URL is the cluster as REDIS_URL takes it.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs, ",") }

// StartCluster starts n (at least 3) redis-server processes in cluster mode,
// assigns the 16384 slots among them and waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): skipping the Redis Cluster test")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools): skipping the Redis Cluster test")
	}
	if n < 3 {
		t.Fatalf("a Redis Cluster needs at least 3 masters, asked for %d", n)
	}
	c := &Cluster{t: t}
	t.Cleanup(c.Stop)
	for i := range n {
		port := freePort(t)
		dir := filepath.Join(t.TempDir(), "node"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(server,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
			"--daemonize", "no", "--protected-mode", "no", "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		c.mu.Lock()
		c.procs = append(c.procs, cmd)
		c.mu.Unlock()
		c.Addrs = append(c.Addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	for _, addr := range c.Addrs {
		waitFor(t, 10*time.Second, addr+" to answer", func(ctx context.Context) bool {
			rc := redis.NewClient(&redis.Options{Addr: addr})
			defer rc.Close()
			return rc.Ping(ctx).Err() == nil
		})
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	var out bytes.Buffer
	create := exec.Command(cli, args...)
	create.Stdout, create.Stderr = &out, &out
	if err := create.Run(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out.String())
	}
	for _, addr := range c.Addrs {
		waitFor(t, 20*time.Second, "cluster_state:ok on "+addr, func(ctx context.Context) bool {
			rc := redis.NewClient(&redis.Options{Addr: addr})
			defer rc.Close()
			info, err := rc.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	// Every node must know the whole slot map before clients ask for it.
	waitFor(t, 20*time.Second, "every node to see all slots", func(ctx context.Context) bool {
		for _, addr := range c.Addrs {
			rc := redis.NewClient(&redis.Options{Addr: addr})
			slots, err := rc.ClusterSlots(ctx).Result()
			rc.Close()
			if err != nil || len(slots) != n {
				return false
			}
		}
		return true
	})
	return c
}

// Server is one plain (non-cluster) redis-server process.
type Server struct {
	Addr string

	t    testing.TB
	path string // of redis-server
	port int
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd // nil while stopped
}

// URL is the server as REDIS_URL takes it (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop kills the server (safe to call twice; also called at cleanup).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart kills the server and starts an empty one on the same address: a
// Redis that lost its data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// StartServer starts one redis-server of the test's own (for tests that stop
// it), on a free port with a temporary directory.
func StartServer(t testing.TB) *Server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): skipping")
	}
	port := freePort(t)
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t, path: path, port: port, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	s.start()
	return s
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	waitFor(s.t, 10*time.Second, s.Addr+" to answer", func(ctx context.Context) bool {
		rc := redis.NewClient(&redis.Options{Addr: s.Addr})
		defer rc.Close()
		return rc.Ping(ctx).Err() == nil
	})
}

// Client returns a cluster client, closed at cleanup.
func (c *Cluster) Client() *redis.ClusterClient {
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	c.t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// Stop kills every node (safe to call twice; also called at cleanup).
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	c.procs = nil
}

// freePort returns a port that is free, whose cluster bus port (port+10000)
// is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(30000)
		if free(port) && free(port+10000) {
			return port
		}
	}
	t.Fatal("no free port pair for a Redis Cluster node")
	return 0
}

func free(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func waitFor(t testing.TB, within time.Duration, what string, cond func(context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// String describes the cluster for messages.
func (c *Cluster) String() string { return fmt.Sprintf("redis cluster %v", c.Addrs) }
