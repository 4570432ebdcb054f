// Package phones holds the countries Onsite may text: an allow-list of
// country calling codes (ONSITE_SMS_COUNTRIES), checked where a phone is
// given (a request's contact phone, a sign-in, a contact to confirm) and
// once more before any text leaves.
package phones

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultCountries is Switzerland and its neighbours.
const DefaultCountries = "CH,LI,DE,FR,IT,AT"

// callingCodes are the country calling codes by ISO 3166 country code: the
// European countries and some others. Codes are prefix-free (E.164), so a
// number starts with at most one of them. A few are shared: +1 by the
// countries of the North American Numbering Plan, +7 by Russia and
// Kazakhstan, +44 by the United Kingdom and the Crown Dependencies.
var callingCodes = map[string]string{
	"AD": "376", "AL": "355", "AT": "43", "BA": "387", "BE": "32", "BG": "359", "BY": "375", "CH": "41", "CY": "357",
	"CZ": "420", "DE": "49", "DK": "45", "EE": "372", "ES": "34", "FI": "358", "FO": "298", "FR": "33", "GB": "44",
	"GI": "350", "GR": "30", "HR": "385", "HU": "36", "IE": "353", "IS": "354", "IT": "39", "LI": "423", "LT": "370",
	"LU": "352", "LV": "371", "MC": "377", "MD": "373", "ME": "382", "MK": "389", "MT": "356", "NL": "31", "NO": "47",
	"PL": "48", "PT": "351", "RO": "40", "RS": "381", "SE": "46", "SI": "386", "SK": "421", "SM": "378", "TR": "90",
	"UA": "380", "VA": "379", "XK": "383",
	"AE": "971", "AR": "54", "AU": "61", "BR": "55", "CA": "1", "CN": "86", "EG": "20", "HK": "852", "IL": "972",
	"IN": "91", "JP": "81", "KR": "82", "MA": "212", "MX": "52", "NZ": "64", "RU": "7", "SG": "65", "TN": "216",
	"US": "1", "ZA": "27",
}

// Countries is an allow-list of countries by calling code.
type Countries struct {
	names []string // as configured: CH, +41, …
	codes []string // calling codes without the +
}

// ParseCountries reads a comma-separated list of ISO 3166 country codes
// (CH, DE, …) or calling codes (+41, +423, …).
func ParseCountries(list string) (Countries, error) {
	var c Countries
	for _, part := range strings.Split(list, ",") {
		part = strings.ToUpper(strings.TrimSpace(part))
		if part == "" {
			continue
		}
		code, ok := callingCodes[part]
		if strings.HasPrefix(part, "+") {
			code, ok = part[1:], len(part) >= 2 && len(part) <= 4 && digits(part[1:])
		}
		if !ok {
			return Countries{}, fmt.Errorf("%q is neither a country code Onsite knows (such as CH) nor a calling code (such as +41)", part)
		}
		c.names, c.codes = append(c.names, part), append(c.codes, code)
	}
	if len(c.codes) == 0 {
		return Countries{}, errors.New("no country given")
	}
	return c, nil
}

// MustParseCountries is ParseCountries for lists known to be good.
func MustParseCountries(list string) Countries {
	c, err := ParseCountries(list)
	if err != nil {
		panic(err)
	}
	return c
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Allows reports whether the E.164 number phone belongs to one of the
// countries.
func (c Countries) Allows(phone string) bool {
	if !strings.HasPrefix(phone, "+") {
		return false
	}
	for _, code := range c.codes {
		if strings.HasPrefix(phone[1:], code) {
			return true
		}
	}
	return false
}

// IsZero reports whether c lists no country (the zero value).
func (c Countries) IsZero() bool { return len(c.codes) == 0 }

// String lists the countries as configured, for messages.
func (c Countries) String() string { return strings.Join(c.names, ", ") }
