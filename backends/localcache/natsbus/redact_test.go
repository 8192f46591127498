package natsbus_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gormpurge/gormpurge/backends/localcache/natsbus"
)

func TestRedactServers(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		secrets        []string
	}{
		{"no credentials", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222", nil},
		{"host only", "127.0.0.1:4222", "127.0.0.1:4222", nil},
		{"empty", "", "", nil},
		{"user and password", "nats://alice:s3cret@h1:4222", "nats://REDACTED@h1:4222", []string{"alice", "s3cret"}},
		{"token", "nats://T0KEN@h1:4222", "nats://REDACTED@h1:4222", []string{"T0KEN"}},
		{"tls token", "tls://T0KEN@h1:4222", "tls://REDACTED@h1:4222", []string{"T0KEN"}},
		{
			"list", "nats://alice:s3cret@h1:4222,nats://T0KEN@h2:4222,nats://h3:4222",
			"nats://REDACTED@h1:4222,nats://REDACTED@h2:4222,nats://h3:4222",
			[]string{"alice", "s3cret", "T0KEN"},
		},
		{
			"list with spaces", "nats://alice:s3cret@h1:4222, nats://T0KEN@h2:4222 ",
			"nats://REDACTED@h1:4222, nats://REDACTED@h2:4222 ",
			[]string{"alice", "s3cret", "T0KEN"},
		},
		{"without scheme", "alice:s3cret@h1:4222", "REDACTED@h1:4222", []string{"alice", "s3cret"}},
		{"unparsable password", "nats://alice:s3%zzcret@h1:4222", "REDACTED@h1:4222", []string{"alice", "s3%zzcret"}},
		{"unparsable with @ in the password", "nats://alice:s3@c%ret@h1:4222", "REDACTED@h1:4222", []string{"alice", "s3@c"}},
		{"control character", "nats://T0KEN\x7f@h1:4222", "REDACTED@h1:4222", []string{"T0KEN"}},
		{
			"unparsable among good ones", "nats://h1:4222,nats://alice:s3%zz@h2:4222,nats://T0KEN@h3",
			"nats://h1:4222,REDACTED@h2:4222,nats://REDACTED@h3", []string{"alice", "s3%zz", "T0KEN"},
		},
		{"query", "nats://h1:4222?token=T0KEN", "nats://h1:4222?token=REDACTED", []string{"T0KEN"}},
		{"empty elements", "nats://T0KEN@h1,,", "nats://REDACTED@h1,,", []string{"T0KEN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := natsbus.RedactServers(tc.in)
			assert.Equal(t, tc.want, got)
			for _, s := range tc.secrets {
				assert.NotContains(t, got, s)
			}
		})
	}
}
