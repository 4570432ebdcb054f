package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onsite/onsite/internal/apitest"
	"github.com/onsite/onsite/internal/auth"
	"github.com/onsite/onsite/internal/dbtest"
	"github.com/onsite/onsite/internal/httpx"
)

// metaRoutes are served without a token and outside the route tables.
var metaRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml"}

// TestEveryRouteChecksRoles walks every route × every role: no token is 401,
// a role not listed is 403, a listed role gets past authorisation.
func TestEveryRouteChecksRoles(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp)
	if len(s.App.Routes) < 10 {
		t.Fatalf("only %d routes registered", len(s.App.Routes))
	}
	for _, r := range s.App.Routes {
		if r.Public {
			continue
		}
		path := strings.NewReplacer(":id", "00000000-0000-0000-0000-000000000000", ":skill", "no_such_skill").Replace(r.Path)
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			if got := s.Call(r.Method, path, "", "{}"); got.Status != http.StatusUnauthorized {
				t.Errorf("no token: %d, want 401", got.Status)
			} else if e := got.Err(t); e.Error.Code != "unauthenticated" {
				t.Errorf("no token: code %s", e.Error.Code)
			}
			if got := s.Call(r.Method, path, "not-a-token", "{}"); got.Status != http.StatusUnauthorized {
				t.Errorf("bad token: %d, want 401", got.Status)
			}
			for _, role := range auth.Roles {
				if r.QueryToken && r.Allows(role) {
					// a stream: check only that it opens
					if st := s.Status(r.Method, path, s.Token(role, "subject-"+string(role))); st == http.StatusUnauthorized || st == http.StatusForbidden || st >= 500 {
						t.Errorf("%s allowed but got %d", role, st)
					}
					continue
				}
				got := s.Call(r.Method, path, s.Token(role, "subject-"+string(role)), "{}")
				if r.Allows(role) {
					if got.Status == http.StatusUnauthorized || got.Status == http.StatusForbidden || got.Status >= 500 {
						t.Errorf("%s allowed but got %d: %s", role, got.Status, got.Body)
					}
				} else if got.Status != http.StatusForbidden {
					t.Errorf("%s not allowed but got %d: %s", role, got.Status, got.Body)
				} else if e := got.Err(t); e.Error.Code != "forbidden" {
					t.Errorf("%s: code %s", role, e.Error.Code)
				}
			}
		})
	}
}

type openAPIDoc struct {
	Paths map[string]map[string]struct {
		OperationID string   `yaml:"operationId"`
		Roles       []string `yaml:"x-roles"`
	} `yaml:"paths"`
}

// TestOpenAPIMatchesRoutes fails when a registered route is missing from
// docs/openapi.yaml, when the document lists a route that does not exist, or
// when the roles differ.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, "sqlite", dbtest.RedisDBApp)
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	served := s.Must(http.StatusOK, http.MethodGet, "/openapi.yaml", "", nil, nil)
	if string(served.Body) != string(raw) {
		t.Fatal("/openapi.yaml does not serve docs/openapi.yaml")
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			documented[strings.ToUpper(method)+" "+path] = op.Roles
		}
	}
	registered := map[string][]string{}
	for _, m := range metaRoutes {
		registered[m] = []string{}
	}
	for _, r := range s.App.Routes {
		registered[r.Method+" "+r.OpenAPIPath()] = roleNames(r)
	}
	for k, roles := range registered {
		docRoles, ok := documented[k]
		if !ok {
			t.Errorf("route %s is not in docs/openapi.yaml", k)
			continue
		}
		if !slices.Equal(sorted(roles), sorted(docRoles)) {
			t.Errorf("route %s: roles %v in code, x-roles %v in the document", k, roles, docRoles)
		}
	}
	for k := range documented {
		if _, ok := registered[k]; !ok {
			t.Errorf("docs/openapi.yaml lists %s, which is not registered", k)
		}
	}
}

func roleNames(r httpx.Route) []string {
	out := []string{}
	for _, role := range r.Roles {
		out = append(out, string(role))
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}
