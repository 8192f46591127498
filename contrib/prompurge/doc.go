// Package prompurge feeds Prometheus with what gormpurge does.
package prompurge

import _ "github.com/gormpurge/gormpurge/observe"
