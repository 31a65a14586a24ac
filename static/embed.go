// Package static holds OneID's stylesheet, vendored scripts (pinned versions,
// no CDN) and images, embedded into the binary.
package static

import "embed"

// Files is the embedded tree: css/, js/ (page scripts), vendor/ (htmx 2.0.4,
// 0BSD licence).
//
//go:embed css js vendor
var Files embed.FS
