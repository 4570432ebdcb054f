// Package docs embeds the OpenAPI document that the server serves at
// /openapi.yaml.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3 description of every route.
//
//go:embed openapi.yaml
var OpenAPI []byte
