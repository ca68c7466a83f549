package deploydb_test

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/deploydb/deploydb"
)

// TestEmptyPagesAreEmptySlices: every list returns a non-nil, empty slice
// when nothing matches, so it encodes as [] and never as null.
func TestEmptyPagesAreEmptySlices(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	d := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
	empty := mustApp(t, svc)
	lists := map[string]func() (any, int, error){
		"ListAppBuilds": func() (any, int, error) {
			r, err := svc.ListAppBuilds(ctx, deploydb.BuildFilter{AppID: empty.ID}, 0)
			return r, len(r), err
		},
		"ListAppBuildsPaged": func() (any, int, error) {
			r, err := svc.ListAppBuildsPaged(ctx, deploydb.BuildFilter{AppID: empty.ID}, deploydb.PageRequest{})
			return r.Items, len(r.Items), err
		},
		"ListAppDeployments": func() (any, int, error) {
			r, err := svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: empty.ID}, 0)
			return r, len(r), err
		},
		"ListDeployments": func() (any, int, error) {
			r, err := svc.ListDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, Status: deploydb.DeploymentFailed}, deploydb.PageRequest{})
			return r.Items, len(r.Items), err
		},
		"ListSuccessfulDeployments": func() (any, int, error) {
			r, err := svc.ListSuccessfulDeployments(ctx, app.ID, 0)
			return r, len(r), err
		},
		"ListDeploymentOperations": func() (any, int, error) {
			r, err := svc.ListDeploymentOperations(ctx, d.ID)
			return r, len(r), err
		},
		"ListActiveOperationsByTarget": func() (any, int, error) {
			r, err := svc.ListActiveOperationsByTarget(ctx, "nowhere", 0)
			return r, len(r), err
		},
	}
	for name, list := range lists {
		items, n, err := list()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		js, _ := json.Marshal(items)
		if n != 0 || string(js) != "[]" {
			t.Errorf("%s: %d items, JSON %s; want an empty, non-nil slice ([])", name, n, js)
		}
	}
	// A walk that ends exactly at a page boundary ends with an empty,
	// non-nil page too.
	p, err := svc.ListAppsPaged(ctx, deploydb.PageRequest{Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Items == nil || len(p.Items) != 2 {
		t.Fatalf("first page of apps: %+v", p)
	}
}

// TestEmptyEnvironmentMeansNotGiven: "" is never an environment; calls that
// need one refuse it, and the filter, which does not, lists every
// environment.
func TestEmptyEnvironmentMeansNotGiven(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := ctxT(t)
	app := mustApp(t, svc)
	b := mustBuild(t, svc, app.ID, deploydb.BuildSucceeded)
	prod := mustDeployment(t, svc, app.ID, "production", deploydb.DeploymentPending)
	staging := mustDeployment(t, svc, app.ID, "staging", deploydb.DeploymentPending)

	refused := map[string]error{}
	_, _, refused["CreateDeployment"] = svc.CreateDeployment(ctx, deploydb.CreateDeploymentParams{AppID: app.ID, BuildID: b.ID})
	_, _, _, refused["CreateDeploymentWithTargets"] = svc.CreateDeploymentWithTargets(ctx, deploydb.CreateDeploymentWithTargetsParams{AppID: app.ID, BuildID: b.ID, Targets: []string{"eu"}})
	_, refused["GetLatestDeployment"] = svc.GetLatestDeployment(ctx, app.ID, deploydb.AnyEnvironment)
	for name, err := range refused {
		if !errors.Is(err, deploydb.ErrInvalidArgument) || !strings.Contains(err.Error(), "environment") {
			t.Errorf(`%s with environment "": %v, want ErrInvalidArgument naming the environment`, name, err)
		}
	}
	all, err := svc.ListAppDeployments(ctx, deploydb.DeploymentFilter{AppID: app.ID, Environment: deploydb.AnyEnvironment}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); !equalIDs(got, []deploydb.DeploymentID{staging.ID, prod.ID}) {
		t.Fatalf(`filter with environment "": %v, want both environments' deployments %v`, got, []deploydb.DeploymentID{staging.ID, prod.ID})
	}
	var n int
	if err := svc.Conn().QueryRow(ctx, `SELECT count(*) FROM deployments WHERE app_id = $1`, app.ID).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d deployments, %v; the refused calls wrote rows", n, err)
	}
}

// exportedDocs parses the non-test Go files of dir and returns every
// exported name (types, functions, methods, constants, variables, struct
// fields, interface methods) that has no doc comment.
func exportedDocs(t *testing.T, dir string) (names int, missing []string) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	miss := func(pos token.Pos, name string) {
		missing = append(missing, fset.Position(pos).String()+": "+name)
	}
	fields := func(owner string, fl *ast.FieldList) {
		for _, f := range fl.List {
			for _, n := range f.Names {
				if n.IsExported() {
					names++
					if f.Doc == nil && f.Comment == nil {
						miss(n.Pos(), owner+"."+n.Name)
					}
				}
			}
		}
	}
	for _, pkg := range pkgs {
		for _, file := range pkg.Files {
			for _, decl := range file.Decls {
				switch d := decl.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					if d.Recv != nil {
						recv := d.Recv.List[0].Type
						if st, ok := recv.(*ast.StarExpr); ok {
							recv = st.X
						}
						if ix, ok := recv.(*ast.IndexExpr); ok {
							recv = ix.X
						}
						if id, ok := recv.(*ast.Ident); !ok || !id.IsExported() {
							continue
						}
					}
					names++
					if d.Doc == nil {
						miss(d.Pos(), d.Name.Name)
					}
				case *ast.GenDecl:
					for _, spec := range d.Specs {
						switch s := spec.(type) {
						case *ast.TypeSpec:
							if !s.Name.IsExported() {
								continue
							}
							names++
							if s.Doc == nil && d.Doc == nil {
								miss(s.Pos(), s.Name.Name)
							}
							switch tt := s.Type.(type) {
							case *ast.StructType:
								fields(s.Name.Name, tt.Fields)
							case *ast.InterfaceType:
								fields(s.Name.Name, tt.Methods)
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if !n.IsExported() {
									continue
								}
								names++
								if s.Doc == nil && s.Comment == nil && d.Doc == nil {
									miss(n.Pos(), n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	return names, missing
}

// TestEveryExportedNameIsDocumented holds the public packages to the rule
// that every exported name has a doc comment.
func TestEveryExportedNameIsDocumented(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "status", "txhttp"} {
		n, missing := exportedDocs(t, dir)
		if n == 0 {
			t.Fatalf("%s: no exported names found", dir)
		}
		for _, m := range missing {
			t.Errorf("undocumented: %s", m)
		}
		t.Logf("%s: %d exported names, %d undocumented", dir, n, len(missing))
	}
}

// readme returns README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of the README section that starts with heading
// and ends at the next heading of the same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	rest := doc[i+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// sentinels returns the names of the Err* variables declared in errors.go.
func sentinels(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, decl := range f.Decls {
		if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, spec := range g.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestREADMEErrorTableMatchesCode: the README's error table and the package
// documentation list exactly the sentinels errors.go declares.
func TestREADMEErrorTableMatchesCode(t *testing.T) {
	t.Parallel()
	want := sentinels(t)
	if len(want) < 8 {
		t.Fatalf("found only %v in errors.go", want)
	}
	errs := section(t, readme(t), "## Errors")
	var table []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(Err\\w+)` \\|").FindAllStringSubmatch(errs, -1) {
		table = append(table, m[1])
	}
	sort.Strings(table)
	if !slices.Equal(table, want) {
		t.Errorf("README error table lists %v; errors.go declares %v", table, want)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^//\t(Err\w+) `).FindAllStringSubmatch(string(doc), -1) {
		listed = append(listed, m[1])
	}
	sort.Strings(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("doc.go lists %v; errors.go declares %v", listed, want)
	}
}

// guardPairs returns the (from, to) pairs of a guarded UPDATE in queries/:
// the rows of its VALUES list.
func guardPairs(t *testing.T, file, query string) map[[2]string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("queries", file))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i := strings.Index(src, "-- name: "+query+" ")
	if i < 0 {
		t.Fatalf("%s has no query %s", file, query)
	}
	src = src[i+1:]
	if j := strings.Index(src, "-- name: "); j >= 0 {
		src = src[:j]
	}
	pairs := map[[2]string]bool{}
	for _, m := range regexp.MustCompile(`\('(\w+)', '(\w+)'\)`).FindAllStringSubmatch(src, -1) {
		pairs[[2]string{m[1], m[2]}] = true
	}
	if len(pairs) == 0 {
		t.Fatalf("%s: no transition pairs found", query)
	}
	return pairs
}

// TestREADMETransitionTablesMatchSQL: the lifecycle table and the operation
// state diagram in the README state exactly the moves the guarded UPDATE
// statements allow.
func TestREADMETransitionTablesMatchSQL(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	table := map[string]map[[2]string]bool{"build": {}, "deployment": {}}
	for _, m := range regexp.MustCompile(`(?m)^\| (build|deployment) \| (\w+) \| ([\w, ]+) \|$`).FindAllStringSubmatch(section(t, doc, "## Lifecycles"), -1) {
		for _, to := range strings.Split(m[3], ",") {
			table[m[1]][[2]string{m[2], strings.TrimSpace(to)}] = true
		}
	}
	diagram := map[[2]string]bool{}
	rescue := map[[2]string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(\w+) --> (\w+):(.*)$`).FindAllStringSubmatch(section(t, doc, "## Rollouts: deployments to several targets"), -1) {
		if strings.HasPrefix(strings.TrimSpace(m[3]), "rescue") {
			rescue[[2]string{m[1], m[2]}] = true // RescueExpiredOperations, not a guarded move
			continue
		}
		diagram[[2]string{m[1], m[2]}] = true
	}
	// The rescue returns an active operation to pending, or fails it.
	wantRescue := map[[2]string]bool{}
	for _, from := range []string{"running", "waiting_for_cutover", "cutting_over"} {
		wantRescue[[2]string{from, "pending"}], wantRescue[[2]string{from, "failed"}] = true, true
	}
	if !maps.Equal(rescue, wantRescue) {
		t.Errorf("operation state diagram: rescue edges %v, want %v", rescue, wantRescue)
	}
	for _, c := range []struct {
		what        string
		doc, actual map[[2]string]bool
	}{
		{"build lifecycle table", table["build"], guardPairs(t, "builds.sql", "UpdateBuildStatus")},
		{"deployment lifecycle table", table["deployment"], guardPairs(t, "deployments.sql", "UpdateDeploymentStatus")},
		{"operation state diagram", diagram, guardPairs(t, "deployment_operations.sql", "TransitionOperation")},
	} {
		for p := range c.actual {
			if !c.doc[p] {
				t.Errorf("%s lacks %s -> %s, which the SQL allows", c.what, p[0], p[1])
			}
		}
		for p := range c.doc {
			if !c.actual[p] {
				t.Errorf("%s states %s -> %s, which the SQL refuses", c.what, p[0], p[1])
			}
		}
		t.Logf("%s: %d moves, as in the SQL", c.what, len(c.actual))
	}
}
