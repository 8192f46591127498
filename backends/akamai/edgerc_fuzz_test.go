package akamai_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/akamai/AkamaiOPEN-edgegrid-golang/v8/pkg/edgegrid"

	"github.com/gormpurge/gormpurge/backends/akamai"
)

// Marker values for the fuzzed .edgerc files' secrets: shaped like real
// ones, and unlike anything the package writes.
const (
	markerClientToken = "akab-clienttokenmark-0123456789abcdef"
	markerSecret      = "SeCrEtMaRkEr+0123456789/abcdefghijklmnopq="
	markerAccessToken = "akab-accesstokenmark-fedcba9876543210"
)

// minSecretLen is the length from which a secret's value must never be
// printed: a shorter one (a fuzzed "a") turns up in any text by chance.
const minSecretLen = 8

// edgercSeeds are .edgerc files that a user may write, and mistakes that
// move a secret into another field.
var edgercSeeds = []string{
	"[ccu]\nhost = akab-abc.luna.akamaiapis.net\nclient_token = " + markerClientToken + "\nclient_secret = " + markerSecret +
		"\naccess_token = " + markerAccessToken + "\n",
	"[default]\r\nhost=akab-abc.luna.akamaiapis.net\r\nclient_token=" + markerClientToken + "\r\nclient_secret=" + markerSecret +
		"\r\naccess_token=" + markerAccessToken + "\r\nmax_body=131072\r\n",
	// A line continuation joins the secret to the host.
	"[ccu]\nhost = akab-abc.luna.akamaiapis.net\\\nclient_secret=" + markerSecret + "\nclient_token = " + markerClientToken +
		"\nclient_secret = " + markerSecret + "\naccess_token = " + markerAccessToken + "\n",
	// A triple-quoted value runs over the secret.
	"[ccu]\nhost = \"\"\"akab-abc.luna.akamaiapis.net\nclient_secret = " + markerSecret + "\"\"\"\nclient_token = " + markerClientToken +
		"\naccess_token = " + markerAccessToken + "\n",
	// The secret in a number.
	"[ccu]\nhost = akab-abc.luna.akamaiapis.net\nclient_token = " + markerClientToken + "\nclient_secret = " + markerSecret +
		"\naccess_token = " + markerAccessToken + "\nmax_body = " + markerSecret + "\n",
	// Two lines run together.
	"[ccu]\nhost = akab-abc.luna.akamaiapis.net client_secret = " + markerSecret + "\nclient_token = " + markerClientToken +
		"\nclient_secret = " + markerSecret + "\naccess_token = " + markerAccessToken + "\n",
	"[ccu]\nhost = https://" + markerAccessToken + "/\nclient_token = " + markerClientToken + "\nclient_secret = " + markerSecret +
		"\naccess_token = " + markerAccessToken + "\n",
	"[ccu]\nclient_secret = " + markerSecret + " trailing words\n[ccu\nhost\n",
	"\ufeff; comment\n# comment\n[ccu]\nhost = h\nclient_secret = '" + markerSecret + "'\naccess_token = `" + markerAccessToken + "`\n",
	"",
}

// Whatever an .edgerc file holds, New never panics, gives the same answer
// each time, and neither its error nor the Backend it returns, printed or
// logged in any way, shows the value of client_token, client_secret or
// access_token.
func FuzzEdgerc(f *testing.F) {
	for _, s := range edgercSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(t.TempDir(), ".edgerc")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := akamai.New(akamai.WithEdgerc(path, "ccu"))
		b2, err2 := akamai.New(akamai.WithEdgerc(path, "ccu"))
		if summary(b, err) != summary(b2, err2) {
			t.Fatalf("two reads of one file differ:\n%s\n%s", summary(b, err), summary(b2, err2))
		}
		out := printed(b, err)
		for _, secret := range secretsOf(path) {
			if strings.Contains(out, secret) {
				t.Fatalf("a secret (%q) is printed:\n%s", secret, out)
			}
		}
	})
}

// summary is what New returned, for comparing two calls.
func summary(b *akamai.Backend, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return b.String()
}

// printed returns everything that a program may print or log of what New
// returned: the error or the Backend, in every format.
func printed(b *akamai.Backend, err error) string {
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	if err != nil {
		fmt.Fprintf(&out, "%v|%+v|%#v|%s|%q\n", err, err, err, err, err)
		logger.Info("error", "err", err)
	}
	if b != nil {
		fmt.Fprintf(&out, "%v|%+v|%#v|%s\n", b, b, b, b)
		logger.Info("backend", "backend", b)
	}
	return out.String()
}

// secretsOf returns what the edgegrid library reads as the client_token,
// client_secret and access_token of the sections that New reads, as long
// as they are long enough to be told apart from other text, and the marker
// values that they hold.
func secretsOf(path string) []string {
	var secrets []string
	for _, section := range []string{"ccu", "default"} {
		var c edgegrid.Config
		_ = c.FromFile(path, section)
		for _, v := range []string{c.ClientToken, c.ClientSecret, c.AccessToken} {
			if len(strings.TrimSpace(v)) >= minSecretLen {
				secrets = append(secrets, v, strings.TrimSpace(v))
			}
			for _, m := range []string{markerClientToken, markerSecret, markerAccessToken} {
				if strings.Contains(v, m) {
					secrets = append(secrets, m)
				}
			}
		}
	}
	return secrets
}
