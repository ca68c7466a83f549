package deploydb_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestIDTypesDoNotMix compiles a caller that passes a build's id where an
// app's is wanted, and the same caller with the right id: the first must not
// compile, the second must.
func TestIDTypesDoNotMix(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	compile := func(call string) (string, error) {
		dir := t.TempDir()
		src := filepath.Join(dir, "probe.go")
		code := `package deploydb

import "context"

func probe(s *Service, b Build) {
	_, _ = ` + call + `
}
`
		if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(wd, "zz_probe.go"): src}})
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("go", "build", "-overlay", ov, "-o", os.DevNull, ".").CombinedOutput()
		return string(out), err
	}
	out, err := compile("s.GetApp(context.Background(), b.ID)")
	if err == nil || !strings.Contains(out, "BuildID") || !strings.Contains(out, "AppID") {
		t.Fatalf("passing a BuildID as an AppID: err %v, output:\n%s", err, out)
	}
	if out, err := compile("s.GetApp(context.Background(), b.AppID)"); err != nil {
		t.Fatalf("the same call with the right id does not compile: %v\n%s", err, out)
	}
}
