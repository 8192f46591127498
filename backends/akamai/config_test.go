package akamai_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

const secret = "s3cr3t-value-that-must-never-be-printed="

func writeEdgerc(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".edgerc")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func section(name string, omit ...string) string {
	fields := map[string]string{
		"host": "akab-abc.luna.akamaiapis.net", "client_token": "akab-ct", "client_secret": secret, "access_token": "akab-at",
	}
	s := "[" + name + "]\n"
	for _, k := range []string{"host", "client_token", "client_secret", "access_token"} {
		if !contains(omit, k) {
			s += k + " = " + fields[k] + "\n"
		}
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func clearAkamaiEnv(t *testing.T) {
	for _, prefix := range []string{"AKAMAI", "AKAMAI_CCU", "AKAMAI_PURGE"} {
		for _, f := range []string{"HOST", "CLIENT_TOKEN", "CLIENT_SECRET", "ACCESS_TOKEN", "ACCOUNT_KEY", "MAX_BODY"} {
			t.Setenv(prefix+"_"+f, "")
			require.NoError(t, os.Unsetenv(prefix+"_"+f))
		}
	}
}

func setEnv(t *testing.T, prefix string, omit ...string) {
	for f, v := range map[string]string{"HOST": "akab-env.luna.akamaiapis.net", "CLIENT_TOKEN": "ct", "CLIENT_SECRET": secret, "ACCESS_TOKEN": "at"} {
		if !contains(omit, f) {
			t.Setenv(prefix+"_"+f, v)
		}
	}
}

func TestCredentialsAreFound(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) []akamai.Option
	}{
		{"edgerc ccu section", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, section("default")+section("ccu")), "ccu")}
		}},
		{"edgerc default section when ccu is missing", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, section("default")), "")}
		}},
		{"edgerc named section", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, section("purge")), "purge")}
		}},
		{"env AKAMAI_CCU_*", func(t *testing.T) []akamai.Option {
			setEnv(t, "AKAMAI_CCU")
			return []akamai.Option{akamai.WithEnv("ccu")}
		}},
		{"env AKAMAI_* when no AKAMAI_CCU_*", func(t *testing.T) []akamai.Option {
			setEnv(t, "AKAMAI")
			return []akamai.Option{akamai.WithEnv("")}
		}},
		{"env first, file as fallback", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithEdgerc(writeEdgerc(t, section("ccu")), "ccu")}
		}},
		{"missing file, then code", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(filepath.Join(t.TempDir(), "nope"), "ccu"),
				akamai.WithCredentials(akamai.Credentials{Host: "h.example", ClientToken: "a", ClientSecret: "b", AccessToken: "c"})}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAkamaiEnv(t)
			b, err := akamai.New(tt.setup(t)...)
			require.NoError(t, err)
			assert.Equal(t, "akamai", b.Name())
		})
	}
}

func TestBadSettingsFailAtNewNamingTheFault(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) []akamai.Option
		want  []string // substrings of the error
	}{
		{"no credentials option", func(t *testing.T) []akamai.Option { return nil },
			[]string{"no credentials", "WithEdgerc"}},
		{"missing file and nothing else", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc("/nonexistent/.edgerc", "ccu")}
		}, []string{"no credentials found", `"/nonexistent/.edgerc"`}},
		{"no such section", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, section("default")), "purge")}
		}, []string{".edgerc", "no section [purge]"}},
		{"field missing in section", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, section("ccu", "client_secret", "access_token")), "ccu")}
		}, []string{".edgerc", "section [ccu]", "client_secret, access_token", "missing"}},
		{"malformed file", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, "[ccu]\nclient_secret "+secret+"\n[[\n"), "ccu")}
		}, []string{".edgerc", "not a valid INI file"}},
		{"host with scheme", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEdgerc(writeEdgerc(t, "[ccu]\nhost = https://akab.example/\nclient_token = a\nclient_secret = "+secret+"\naccess_token = c\n"), "ccu")}
		}, []string{"section [ccu]", "host", "without a scheme"}},
		{"partial environment", func(t *testing.T) []akamai.Option {
			require.NoError(t, os.Unsetenv("AKAMAI_CCU_CLIENT_SECRET"))
			return []akamai.Option{akamai.WithEnv("ccu")}
		}, []string{"environment AKAMAI_CCU_*", "AKAMAI_CCU_CLIENT_SECRET", "missing"}},
		{"empty field in code", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithCredentials(akamai.Credentials{Host: "h", ClientToken: "a", ClientSecret: secret})}
		}, []string{"WithCredentials", "AccessToken"}},
		{"secret with a space", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithCredentials(akamai.Credentials{Host: "h", ClientToken: "a", ClientSecret: secret + " x", AccessToken: "c"})}
		}, []string{"WithCredentials", "ClientSecret"}},
		{"rate limit above Akamai's", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithRateLimits(akamai.RateLimits{URLs: akamai.Bucket{Burst: 20_000, PerSecond: 200}})}
		}, []string{"WithRateLimits", "URLs", "10000"}},
		{"refill above Akamai's", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithRateLimits(akamai.RateLimits{Tags: akamai.Bucket{Burst: 100, PerSecond: 10}})}
		}, []string{"WithRateLimits", "Tags", "refill"}},
		{"body too large", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithMaxBodyBytes(60_000)}
		}, []string{"WithMaxBodyBytes", "60000"}},
		{"bad hostname", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithHostnames("https://www.example.com/")}
		}, []string{"WithHostnames", "https://www.example.com/"}},
		{"bad network", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithNetwork("prod")}
		}, []string{"WithNetwork", "prod"}},
		{"CP code not positive", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithCPCodes(12345, 0)}
		}, []string{"WithCPCodes", ": 0:", "positive"}},
		{"no CP code", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithCPCodes()}
		}, []string{"WithCPCodes", "no CP code"}},
		{"nil client", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithHTTPClient(nil)}
		}, []string{"WithHTTPClient: nil client: pass an *http.Client"}},
		{"nil logger", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithLogger(nil)}
		}, []string{"WithLogger: nil logger: pass slog.New(slog.DiscardHandler)"}},
		{"nil clock", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithClock(nil)}
		}, []string{"WithClock: nil clock"}},
		{"typed-nil clock", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), akamai.WithClock((*nilClock)(nil))}
		}, []string{"WithClock: a nil *akamai_test.nilClock: pass akamai.SystemClock{}"}},
		{"nil option", func(t *testing.T) []akamai.Option {
			return []akamai.Option{akamai.WithEnv("ccu"), nil}
		}, []string{"akamai: New: an Option is nil: remove it, or pass one made by a With... function"}},
		{"nil option and another fault", func(t *testing.T) []akamai.Option {
			return []akamai.Option{nil, akamai.WithEnv("ccu"), akamai.WithNetwork("prod")}
		}, []string{"an Option is nil", "WithNetwork"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAkamaiEnv(t)
			setEnv(t, "AKAMAI_CCU") // so that only the setting under test is wrong
			b, err := akamai.New(tt.setup(t)...)
			require.Error(t, err)
			assert.Nil(t, b)
			var ce *akamai.ConfigError
			assert.True(t, errors.As(err, &ce), "a *ConfigError: %v", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), secret, "secrets never appear in errors")
		})
	}
}

func TestCredentialsNeverPrintTheirSecrets(t *testing.T) {
	c := akamai.Credentials{Host: "akab.example", ClientToken: "ct-value", ClientSecret: secret, AccessToken: "at-value"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		assert.NotContains(t, s, secret)
		assert.NotContains(t, s, "ct-value")
		assert.NotContains(t, s, "at-value")
		assert.Contains(t, s, "akab.example")
	}
}

// nilClock is a Clock whose nil pointer WithClock must refuse.
type nilClock struct{}

func (*nilClock) Now() time.Time                                   { return time.Time{} }
func (*nilClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
