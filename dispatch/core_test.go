package dispatch

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
