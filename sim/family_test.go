package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFamily writes scenarios (file name → text) into a fresh directory.
func writeFamily(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFamily(t *testing.T) {
	t.Parallel()
	other := strings.Replace(tiny, "name: one-technician", "name: other", 1)
	tests := []struct {
		name  string
		files map[string]string
		want  string // error; "" for none
		names string
	}{
		{"in file order", map[string]string{"b.yaml": tiny, "a.yaml": other, "notes.md": "no scenario"}, "", "other one-technician"},
		{"empty", map[string]string{"notes.md": "x"}, "no scenario", ""},
		{"same name twice", map[string]string{"a.yaml": tiny, "b.yaml": tiny}, "both named", ""},
		{"one invalid", map[string]string{"a.yaml": tiny, "b.yaml": other + "colour: red\n"}, "b.yaml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadFamily(writeFamily(t, tt.files))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, sc := range got {
				names = append(names, sc.Name)
			}
			if strings.Join(names, " ") != tt.names {
				t.Fatalf("scenarios %v, want %s", names, tt.names)
			}
		})
	}
}

// TestFamilyReport runs a family of two small days (one with chaining, one
// without) and checks the one table: a row per scenario, a column per
// strategy met anywhere, "–" where a strategy does not apply.
func TestFamilyReport(t *testing.T) {
	t.Parallel()
	chained := strings.Replace(tiny, "name: one-technician", "name: chained\ndescription: \"Two requests, one technician, chaining on\"", 1) + "  chain_within: 15m\n"
	plain := strings.Replace(tiny, "name: one-technician", "name: plain\ndescription: \"Two requests, one technician\"", 1)
	scs, err := LoadFamily(writeFamily(t, map[string]string{"a.yaml": chained, "b.yaml": plain}))
	if err != nil {
		t.Fatal(err)
	}
	var f FamilyReport
	for _, sc := range scs {
		vs, err := Variants(sc, "all")
		if err != nil {
			t.Fatal(err)
		}
		seeds := []uint64{1, 2}
		sums, bounds := Compare(sc, vs, seeds, nil)
		f.Rows = append(f.Rows, FamilyRow{Scenario: sc, Dir: sc.Name, Seeds: seeds, Summaries: sums, Bounds: bounds})
	}
	out := t.TempDir()
	if err := WriteFamilyReport(out, f); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, FamilyFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(raw)
	for _, want := range []string{
		"| scenario | seeds | sequential | wave | batch | batch+chain | clairvoyant plan |",
		"| [chained](chained/report.md) | 2 | 50.0 ± 0.0 % (1.0) | 50.0 ± 0.0 % (1.0) | 50.0 ± 0.0 % (1.0) |",
		"| [plain](plain/report.md) | 2 | 50.0 ± 0.0 % (1.0) | 50.0 ± 0.0 % (1.0) | 50.0 ± 0.0 % (1.0) | – | 100.0 % |",
		"| plain | Two requests, one technician | 60 min | 60 min |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("index.md lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"chained/report.md", "plain/report.md", "plain/time_to_site.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}
}
