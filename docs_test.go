package gateway

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// syntaxDocs is the page whose Caddyfile syntax blocks must equal the godoc.
const syntaxDocs = "docs/configuration.md"

// syntaxSources names, for each documented directive or option, the
// function whose doc comment has its `Syntax:` block: the source of truth.
var syntaxSources = []struct {
	name     string // as in the docs marker <!-- syntax: name -->
	dir      string // package directory
	recv     string // receiver type, "" for a function
	function string
}{
	{"oauth", "caddyoauth", "", "parseOAuthOption"},
	{"oauth_server", "caddyoauth", "", "parseServerDirective"},
	{"oauth_scope", "caddyscope", "Scope", "UnmarshalCaddyfile"},
	{"oauth_resource_metadata", "caddyscope", "ResourceMetadata", "UnmarshalCaddyfile"},
}

// TestDocumentedSyntaxMatchesGodoc keeps each Caddyfile syntax block of
// docs/configuration.md (a ```caddyfile fence right after a line
// `<!-- syntax: <name> -->`) equal to the indented block that follows
// "Syntax:" in the doc comment of the function that parses it.
func TestDocumentedSyntaxMatchesGodoc(t *testing.T) {
	documented, err := docSyntaxBlocks(syntaxDocs)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, src := range syntaxSources {
		known[src.name] = true
		t.Run(src.name, func(t *testing.T) {
			want, where, err := godocSyntax(src.dir, src.recv, src.function)
			if err != nil {
				t.Fatal(err)
			}
			blocks := documented[src.name]
			if len(blocks) != 1 {
				t.Fatalf("%s has %d blocks marked <!-- syntax: %s -->, want 1", syntaxDocs, len(blocks), src.name)
			}
			got := blocks[0]
			if got.text != want {
				t.Errorf("%s:%d: the syntax block of %s differs from the godoc of %s (the source of truth; copy it over):\n%s",
					syntaxDocs, got.line, src.name, where, firstDifference(got.text, want))
			}
		})
	}
	for name, blocks := range documented {
		if !known[name] {
			t.Errorf("%s:%d: <!-- syntax: %s --> names no directive this test knows; add it to syntaxSources", syntaxDocs, blocks[0].line, name)
		}
	}
}

type docBlock struct {
	text string
	line int // of the marker
}

// docSyntaxBlocks reads the marked ```caddyfile blocks of a Markdown file.
func docSyntaxBlocks(path string) (map[string][]docBlock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string][]docBlock{}
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "<!-- syntax:")
		if !ok {
			continue
		}
		name, ok = strings.CutSuffix(name, "-->")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: malformed marker %q, want <!-- syntax: <name> -->", path, i+1, lines[i])
		}
		if i+1 >= len(lines) || lines[i+1] != "```caddyfile" {
			return nil, fmt.Errorf("%s:%d: <!-- syntax: %s --> must be followed by a ```caddyfile line", path, i+1, name)
		}
		end := i + 2
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("%s:%d: the syntax block of %s is not closed", path, i+1, name)
		}
		out[name] = append(out[name], docBlock{strings.Join(lines[i+2:end], "\n"), i + 1})
		i = end
	}
	return out, nil
}

// godocSyntax returns the Syntax: block of the doc comment of a function
// (or method of recv) in the non-test Go files of dir, without the one
// tab of indentation that makes it a code block in godoc.
func godocSyntax(dir, recv, function string) (string, string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", "", err
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			return "", "", err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Name.Name != function || receiverName(fn) != recv {
				continue
			}
			where := fmt.Sprintf("%s (%s)", function, fset.Position(fn.Pos()))
			if recv != "" {
				where = fmt.Sprintf("(*%s).%s (%s)", recv, function, fset.Position(fn.Pos()))
			}
			if fn.Doc == nil {
				return "", where, fmt.Errorf("%s has no doc comment", where)
			}
			block, err := syntaxBlock(fn.Doc.Text())
			if err != nil {
				return "", where, fmt.Errorf("%s: %v", where, err)
			}
			return block, where, nil
		}
	}
	return "", "", fmt.Errorf("no function %s with receiver %q in %s", function, recv, dir)
}

func receiverName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return ""
	}
	t := fn.Recv.List[0].Type
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// syntaxBlock finds the line ending in "Syntax:" in a doc comment's text
// and returns the tab-indented lines after it, one tab removed. Blank
// lines inside the block are kept; the block ends at the first line that
// is not indented.
func syntaxBlock(doc string) (string, error) {
	lines := strings.Split(doc, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasSuffix(strings.TrimSpace(l), "Syntax:") {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return "", fmt.Errorf(`no "Syntax:" in its doc comment`)
	}
	for start < len(lines) && strings.TrimSpace(lines[start]) == "" {
		start++
	}
	var block []string
	for _, l := range lines[start:] {
		if l != "" && !strings.HasPrefix(l, "\t") {
			break
		}
		block = append(block, strings.TrimPrefix(l, "\t"))
	}
	for len(block) > 0 && block[len(block)-1] == "" {
		block = block[:len(block)-1]
	}
	if len(block) == 0 {
		return "", fmt.Errorf(`no indented block after "Syntax:"`)
	}
	return strings.Join(block, "\n"), nil
}

// firstDifference shows where two blocks part, line by line.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("block line %d:\n  docs:  %q\n  godoc: %q\ngodoc block:\n%s", i+1, gl, wl, want)
		}
	}
	return ""
}
