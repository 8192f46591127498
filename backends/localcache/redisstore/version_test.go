package redisstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSupportedVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"7.0.0", true},
		{"7.2.4", true},
		{"8.0.2", true},
		{"6.2.14", false},
		{"5.0.7", false},
		{"unknown", false},
	} {
		err := supportedVersion(tc.version)
		if tc.ok {
			assert.NoError(t, err, tc.version)
			continue
		}
		require.Error(t, err, tc.version)
		assert.Contains(t, err.Error(), "7.0 or later", tc.version)
	}
}

func TestInfoField(t *testing.T) {
	info := "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"
	v, ok := infoField(info, "redis_version")
	assert.True(t, ok)
	assert.Equal(t, "7.0.15", v)
	_, ok = infoField(info, "redis_mode")
	assert.False(t, ok)
}
