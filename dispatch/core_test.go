package dispatch

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCoreIsPure: the pure core (dispatch/lifecycle and dispatch/match) is
// the same code in the server and the simulator, so it takes plain values
// and time as a value, and imports no storage, HTTP or queue library.
func TestCoreIsPure(t *testing.T) {
	t.Parallel()
	var coreFiles []string
	for _, dir := range []string{"lifecycle", "match"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				coreFiles = append(coreFiles, f)
			}
		}
	}
	if len(coreFiles) < 5 {
		t.Fatalf("found only %v", coreFiles)
	}
	allowed := map[string]bool{
		"github.com/onsite/onsite/geo":           true,
		"github.com/onsite/onsite/internal/errs": true,
	}
	for _, f := range coreFiles {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, ".") && !allowed[path] {
				t.Errorf("%s imports %s: the core may import only the standard library, geo and errs", f, path)
			}
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "time.Now(") {
			t.Errorf("%s reads the wall clock: the core takes now as a value", f)
		}
	}
}

func TestLate(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{LateAfter: 10 * time.Minute}}
	at := func(m int) *time.Time { v := time.Date(2026, 3, 10, 9, m, 0, 0, time.UTC); return &v }
	for _, tt := range []struct {
		name string
		r    Request
		eta  *time.Time
		want bool
	}{
		{"on time", Request{Mode: ASAP, State: EnRoute, EtaPromisedAt: at(20)}, at(25), false},
		{"ten minutes is the line", Request{Mode: ASAP, State: EnRoute, EtaPromisedAt: at(20)}, at(30), false},
		{"well past what was told", Request{Mode: ASAP, State: Assigned, EtaPromisedAt: at(20)}, at(31), true},
		{"nothing told yet", Request{Mode: ASAP, State: Assigned}, at(50), false},
		{"window, not on the way yet", Request{Mode: Window, State: Assigned, WindowEnd: at(30)}, at(45), false},
		{"window, on the way, inside it", Request{Mode: Window, State: EnRoute, WindowEnd: at(30)}, at(29), false},
		{"window, on the way, past its end", Request{Mode: Window, State: EnRoute, WindowEnd: at(30)}, at(31), true},
		{"window, late told, small slip since", Request{Mode: Window, State: EnRoute, WindowEnd: at(30), EtaPromisedAt: at(40)}, at(45), false},
		{"window, late told, slipped again", Request{Mode: Window, State: EnRoute, WindowEnd: at(30), EtaPromisedAt: at(40)}, at(51), true},
	} {
		if got := s.late(tt.r, *tt.eta); got != tt.want {
			t.Errorf("%s: late = %v, want %v", tt.name, got, tt.want)
		}
	}
}
