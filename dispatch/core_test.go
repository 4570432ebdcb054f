package dispatch

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// coreFiles are the pure core: the same code runs in the server and the
// simulator, so it takes plain values and time as a value, and imports no
// storage, HTTP or queue library.
var coreFiles = []string{"request.go", "match/match.go", "match/strategy.go", "match/pool.go", "match/assignment.go"}

func TestCoreIsPure(t *testing.T) {
	t.Parallel()
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
