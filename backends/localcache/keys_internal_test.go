package localcache

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAcceptEncoding(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"":                              "",
		"gzip":                          "gzip",
		"gzip, deflate, br, zstd":       "gzip",
		"GZip":                          "gzip",
		"br, gzip ;q=0.5":               "gzip",
		"gzip; Q=0.001":                 "gzip",
		"gzip;q=0":                      "",
		"gzip; q=0.000":                 "",
		"gzip;q=soon":                   "",
		"gzip;q=-1":                     "",
		"gzip;q=0, gzip":                "gzip",
		"deflate, br, zstd":             "",
		"*":                             "",
		"x-gzip":                        "",
		"gzipped":                       "",
		"identity":                      "",
		"br;q=1.0, gzip;q=0.8, *;q=0.1": "gzip",
	} {
		assert.Equal(t, want, acceptEncoding(v), "%q", v)
	}
}
