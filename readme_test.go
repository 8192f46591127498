package gormpurge_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's quick start is example_quickstart_test.go written as a
// program of its own: package main, func main, no Output comment. The
// example runs under go test and checks its output; this test keeps the
// README's copy the same text, so the README shows code that compiles and
// runs.
func TestREADMEQuickstart(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "<!-- quickstart:begin -->\n")
	require.True(t, ok, "README.md has no <!-- quickstart:begin --> marker")
	block, _, ok := strings.Cut(rest, "<!-- quickstart:end -->")
	require.True(t, ok, "README.md has no <!-- quickstart:end --> marker")
	code, ok := strings.CutPrefix(block, "```go\n")
	require.True(t, ok, "the quick start block does not open with ```go")
	code, ok = strings.CutSuffix(code, "```\n")
	require.True(t, ok, "the quick start block does not end with ``` before the end marker")

	src, err := os.ReadFile("example_quickstart_test.go")
	require.NoError(t, err)
	want := asProgram(t, string(src))

	gotLines, wantLines := strings.Split(code, "\n"), strings.Split(want, "\n")
	for i := range min(len(gotLines), len(wantLines)) {
		require.Equal(t, wantLines[i], gotLines[i],
			"README.md's quick start differs from example_quickstart_test.go at line %d of the program", i+1)
	}
	require.Equal(t, len(wantLines), len(gotLines),
		"README.md's quick start and example_quickstart_test.go differ in length")
}

// asProgram turns the whole-file example into the program the README shows.
func asProgram(t *testing.T, src string) string {
	t.Helper()
	replace := func(from, to string) {
		t.Helper()
		require.Equal(t, 1, strings.Count(src, from), "example_quickstart_test.go should hold %q once", from)
		src = strings.Replace(src, from, to, 1)
	}
	replace("package gormpurge_test\n", "package main\n")
	replace("\nfunc Example_quickstart() {\n", "\nfunc main() {\n")
	before, output, ok := strings.Cut(src, "\t// Output:\n")
	require.True(t, ok, "example_quickstart_test.go has no Output comment")
	require.True(t, strings.HasSuffix(output, "\n}\n"), "the Output comment should end the example")
	return before + "}\n"
}
