package notify

import (
	"bytes"
	"io"
	"net/http"
	"net/url"

	"github.com/twilio/twilio-go/client"
)

// ReadSignedForm checks the X-Twilio-Signature of a webhook against the
// public URL the provider called (configured, never taken from the Host
// header behind a proxy) and returns its form. ok is false when the
// signature is missing or wrong. The body is read once and put back.
func ReadSignedForm(r *http.Request, authToken, publicURL string) (url.Values, bool, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, false, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, false, nil
	}
	sig := r.Header.Get("X-Twilio-Signature")
	if authToken == "" || sig == "" {
		return form, false, nil
	}
	params := make(map[string]string, len(form))
	for k, v := range form {
		if len(v) > 0 {
			params[k] = v[0] // only the first value of a repeated key is signed
		}
	}
	v := client.NewRequestValidator(authToken)
	return form, v.Validate(publicURL+r.URL.RequestURI(), params, sig), nil
}
