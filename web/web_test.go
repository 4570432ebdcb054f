package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func TestIndexIsServedAtRoot(t *testing.T) {
	rec := get(t, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	if !strings.Contains(rec.Body.String(), `data-testid="login-form"`) {
		t.Error("the page has no sign-in form")
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("the page has no Content-Security-Policy")
	}
}

func TestScriptsHaveJavaScriptType(t *testing.T) {
	for _, p := range []string{"/static/js/main.js", "/static/vendor/leaflet/leaflet.js"} {
		rec := get(t, p)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", p, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("GET %s: Content-Type = %q, want text/javascript", p, ct)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", p)
		}
	}
	if ct := get(t, "/static/app.css").Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("app.css: Content-Type = %q", ct)
	}
	if ct := get(t, "/static/vendor/leaflet/images/marker-icon.png").Header().Get("Content-Type"); ct != "image/png" {
		t.Errorf("marker-icon.png: Content-Type = %q", ct)
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	for _, p := range []string{"/static/nope.js", "/static/", "/static/js", "/v1/requests", "/static/../web.go", "/favicon.ico"} {
		if rec := get(t, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
}

func TestRevalidationAnswers304(t *testing.T) {
	first := get(t, "/static/js/main.js")
	etag := first.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if rec := get(t, "/static/js/main.js", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("with If-None-Match: %d, want 304", rec.Code)
	}
}

func TestOnlyPostAndFriendsAreRefused(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", rec.Code)
	}
}

// Everything the page loads is embedded: every src/href of index.html and
// every import of a module resolves to a file here (no CDN, works offline).
func TestEveryReferenceIsEmbedded(t *testing.T) {
	index, err := files.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	attr := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	for _, m := range attr.FindAllStringSubmatch(string(index), -1) {
		ref := m[1]
		if strings.Contains(ref, "://") || strings.HasPrefix(ref, "//") {
			t.Errorf("index.html loads %s from elsewhere", ref)
			continue
		}
		if rec := get(t, "/"+strings.TrimPrefix(ref, "/")); rec.Code != http.StatusOK {
			t.Errorf("index.html references %s: %d", ref, rec.Code)
		}
	}
	imp := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'`)
	err = fs.WalkDir(files, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := files.ReadFile(p)
		for _, m := range imp.FindAllStringSubmatch(string(src), -1) {
			ref := m[1] + m[2]
			if !strings.HasPrefix(ref, "./") && !strings.HasPrefix(ref, "../") {
				t.Errorf("%s imports %q: only relative imports of embedded files", p, ref)
				continue
			}
			target := path.Join(path.Dir(p), ref)
			if _, err := fs.Stat(files, target); err != nil {
				t.Errorf("%s imports %s: not embedded", p, ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The policy forbids inline script, eval and inline styles, and the page
// needs none of them (e2e/dashboard.test.mjs checks in a browser that nothing
// is refused).
func TestContentSecurityPolicyIsStrict(t *testing.T) {
	policy := get(t, "/").Header().Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			directives[f[0]] = strings.Join(f[1:], " ")
		}
	}
	want := map[string]string{
		"default-src":     "'self'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self'",
		"object-src":      "'none'",
		"base-uri":        "'self'",
		"form-action":     "'self'",
		"frame-ancestors": "'none'",
	}
	for k, v := range want {
		if directives[k] != v {
			t.Errorf("%s = %q, want %q (policy %q)", k, directives[k], v, policy)
		}
	}
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'strict-dynamic'", "*"} {
		for _, f := range strings.Fields(policy) {
			if strings.TrimSuffix(f, ";") == bad {
				t.Errorf("the policy allows %s: %q", bad, policy)
			}
		}
	}
}

// index.html has no inline script, handler, style or javascript: URL (the
// policy would refuse them).
func TestPageHasNothingInline(t *testing.T) {
	index, err := files.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(index)
	for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(m, ` src="`) {
			t.Errorf("inline script: %s", m)
		}
	}
	for _, re := range []string{`(?i)\son[a-z]+\s*=`, `(?i)\sstyle\s*=`, `(?i)<style\b`, `(?i)javascript:`} {
		if m := regexp.MustCompile(re).FindString(page); m != "" {
			t.Errorf("index.html has %q", m)
		}
	}
}

// The page's scripts build the DOM with createElement and textContent: no
// HTML strings, no eval, no string handlers. Leaflet options that take HTML
// (divIcon html, tooltip and popup content) get DOM nodes or functions
// returning them. The token leaves in a URL only for the event stream.
func TestScriptsBuildNoMarkupFromStrings(t *testing.T) {
	banned := []struct{ re, why string }{
		{`\.innerHTML\b`, "innerHTML"},
		{`\.outerHTML\b`, "outerHTML"},
		{`insertAdjacentHTML`, "insertAdjacentHTML"},
		{`document\.write`, "document.write"},
		{`createContextualFragment`, "createContextualFragment"},
		{`DOMParser`, "DOMParser"},
		{`\.srcdoc\b`, "srcdoc"},
		{`\beval\s*\(`, "eval"},
		{`new\s+Function\b`, "new Function"},
		{`set(Timeout|Interval)\s*\(\s*['"` + "`" + `]`, "a string timer"},
		{`\bhtml\s*:\s*['"` + "`" + `]`, "a Leaflet html string"},
		{`(bindPopup|bindTooltip|setPopupContent|setTooltipContent|setContent)\s*\(\s*['"` + "`" + `]`, "a Leaflet HTML string"},
		{`\.setAttribute\(\s*['"]on`, "a string handler"},
		{`\.setAttribute\(\s*['"]style`, "an inline style (the policy refuses it; use element.style)"},
	}
	err := fs.WalkDir(files, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := files.ReadFile(p)
		for _, b := range banned {
			if loc := regexp.MustCompile(b.re).FindIndex(src); loc != nil {
				line := 1 + strings.Count(string(src[:loc[0]]), "\n")
				t.Errorf("%s:%d uses %s", p, line, b.why)
			}
		}
		if strings.Contains(string(src), "access_token=") && path.Base(p) != "stream.js" {
			t.Errorf("%s puts the token in a URL; only the event stream may (EventSource sends no headers)", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
