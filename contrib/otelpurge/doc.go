// Package otelpurge feeds OpenTelemetry with what gormpurge does.
package otelpurge

import _ "github.com/gormpurge/gormpurge/observe"
