package onsite_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps the package layout honest: the domain packages never
// import HTTP, queue or SMS libraries, geo imports no domain package,
// technicians does not import dispatch, and the two HTTP packages never
// import each other.
func TestImportRules(t *testing.T) {
	t.Parallel()
	const mod = "github.com/onsite/onsite/"
	forbidden := map[string][]string{
		"geo":         {mod + "dispatch", mod + "technicians", mod + "api", mod + "mobile-api", "github.com/labstack/echo", "github.com/hibiken/asynq", "github.com/twilio/twilio-go", "gorm.io/gorm"},
		"technicians": {mod + "dispatch", mod + "api", mod + "mobile-api", "github.com/labstack/echo", "github.com/hibiken/asynq", "github.com/twilio/twilio-go"},
		"dispatch":    {mod + "api", mod + "mobile-api", "github.com/labstack/echo", "github.com/hibiken/asynq", "github.com/twilio/twilio-go"},
		"api":         {mod + "mobile-api"},
		"mobile-api":  {mod + "api"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}

// TestMatchCoreIsPure: the pure core that the server and the simulator
// share (dispatch/match: the index, eligibility, ranking, offer plans, the
// batch solver; dispatch/lifecycle: the request state machine) imports
// nothing with I/O: the standard library, geo and H3 only.
func TestMatchCoreIsPure(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"./dispatch/match", "./dispatch/lifecycle"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		allowed := map[string]bool{
			"github.com/onsite/onsite/dispatch/match": true, "github.com/onsite/onsite/dispatch/lifecycle": true,
			"github.com/onsite/onsite/geo": true, "github.com/onsite/onsite/internal/errs": true, "github.com/uber/h3-go/v4": true,
		}
		for _, dep := range strings.Fields(string(out)) {
			if !allowed[dep] {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
