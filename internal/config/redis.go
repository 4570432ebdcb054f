package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseRedisURL reads REDIS_URL. Two forms:
//
//	redis://[user:password@]host:port[/db][?option=value…]          one server (rediss:// for TLS)
//	redis+cluster://[user:password@]host1:port1,host2:port2,…[?…]   a Redis Cluster (rediss+cluster:// for TLS)
//
// The cluster form lists seed nodes (any reachable one is enough: the client
// learns the rest from CLUSTER SLOTS) and has no database number, as a
// cluster only has database 0. Query options are go-redis's (dial_timeout,
// pool_size, …). Exactly one of the results is set.
func ParseRedisURL(v string) (*redis.Options, *redis.ClusterOptions, error) {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return nil, nil, fmt.Errorf("want redis://host:port/db or redis+cluster://host1:port1,host2:port2,…")
	}
	switch scheme {
	case "redis", "rediss":
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || strings.Contains(u.Host, ",") {
			return nil, nil, fmt.Errorf("want redis://host:port/db (several hosts: redis+cluster://host1:port1,host2:port2,…)")
		}
		opt, err := redis.ParseURL(v)
		if err != nil {
			return nil, nil, fmt.Errorf("want redis://host:port/db: %v", strings.TrimPrefix(err.Error(), "redis: "))
		}
		return opt, nil, nil
	case "redis+cluster", "rediss+cluster":
	default:
		return nil, nil, fmt.Errorf("unknown scheme %q: want redis, rediss, redis+cluster or rediss+cluster", scheme)
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo := ""
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i+1], authority[i+1:]
	}
	path, query, _ := strings.Cut(tail, "?")
	if path != "" && path != "/" && path != "/0" {
		return nil, nil, fmt.Errorf("a Redis Cluster has only database 0: drop %q", path)
	}
	var addrs []string
	for _, a := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, nil, fmt.Errorf("cluster node %q: want host:port", a)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, nil, fmt.Errorf("query: %v", err)
	}
	if q.Has("addr") {
		return nil, nil, fmt.Errorf("list the cluster nodes before the path (redis+cluster://host1:port1,host2:port2), not as addr=")
	}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	// go-redis's own cluster URL form: the first node in the authority, the
	// others as addr= parameters.
	goURL := strings.TrimSuffix(scheme, "+cluster") + "://" + userinfo + addrs[0]
	if len(q) > 0 {
		goURL += "?" + q.Encode()
	}
	opt, err := redis.ParseClusterURL(goURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%v", strings.TrimPrefix(err.Error(), "redis: "))
	}
	return nil, opt, nil
}
