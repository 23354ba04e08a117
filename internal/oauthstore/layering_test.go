package oauthstore

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoHTTPBelowTheModule: the records' owners stay below HTTP. No file of
// this package imports net/http, a Caddy HTTP package or the modules above
// it, or names the token endpoint's wire error (ARCHITECTURE principle 1).
func TestNoHTTPBelowTheModule(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	forbidden := []string{"net/http", "github.com/caddyserver/caddy/v2/modules/caddyhttp", "github.com/caddyapigw/gateway/caddyoauth", "github.com/caddyapigw/gateway/caddyscope"}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", file, path)
				}
			}
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "oauthError") {
			t.Errorf("%s refers to oauthError, the token endpoint's wire error", file)
		}
	}
}
