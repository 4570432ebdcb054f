package phones_test

import (
	"strings"
	"testing"

	"github.com/onsite/onsite/internal/phones"
)

func TestCountries(t *testing.T) {
	t.Parallel()
	def := phones.MustParseCountries(phones.DefaultCountries)
	tests := []struct {
		name  string
		list  phones.Countries
		phone string
		want  bool
	}{
		{"Switzerland", def, "+41791234567", true},
		{"Liechtenstein", def, "+4233921234", true},
		{"Germany", def, "+4915112345678", true},
		{"France", def, "+33612345678", true},
		{"Italy", def, "+393123456789", true},
		{"Austria", def, "+436641234567", true},
		{"United Kingdom", def, "+447700900123", false},
		{"United States", def, "+12025550123", false},
		{"premium-rate range abroad", def, "+882345678901", false},
		{"Czechia is not Liechtenstein", def, "+420601123456", false},
		{"no plus", def, "41791234567", false},
		{"empty", def, "", false},
		{"calling code given", phones.MustParseCountries("+44"), "+447700900123", true},
		{"lower case and spaces", phones.MustParseCountries(" us , ch"), "+12025550123", true},
		{"one country", phones.MustParseCountries("CH"), "+33612345678", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.list.Allows(tc.phone); got != tc.want {
				t.Fatalf("%v.Allows(%q) = %v, want %v", tc.list, tc.phone, got, tc.want)
			}
		})
	}
	if def.String() != "CH, LI, DE, FR, IT, AT" {
		t.Errorf("String() = %q", def.String())
	}
}

func TestParseCountries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ list, wantErr string }{
		{"CH,DE", ""},
		{"+41,+423", ""},
		{"", "no country"},
		{" , ", "no country"},
		{"XX", `"XX"`},
		{"Switzerland", `"SWITZERLAND"`},
		{"+", `"+"`},
		{"+41a", `"+41A"`},
		{"+12345", `"+12345"`},
	} {
		_, err := phones.ParseCountries(tc.list)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParseCountries(%q) = %v, want %q", tc.list, err, tc.wantErr)
		}
	}
}
