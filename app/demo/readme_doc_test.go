package demo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEConfiguration: every variable app/config reads is in the
// README's configuration table.
func TestREADMEConfiguration(t *testing.T) {
	root := moduleRoot(t)
	readme := read(t, filepath.Join(root, "README.md"))
	src := read(t, filepath.Join(root, "app/config/config.go"))
	vars := map[string]bool{}
	for _, v := range regexp.MustCompile(`getenv\("(ONEID_[A-Z_]+)"\)`).FindAllStringSubmatch(src, -1) {
		vars[v[1]] = true
	}
	if len(vars) < 10 {
		t.Fatalf("found only %d variables in app/config; has it moved?", len(vars))
	}
	table := section(t, readme, "## Configuration")
	for v := range vars {
		if !strings.Contains(table, "`"+v+"`") {
			t.Errorf("README's configuration table does not list %s", v)
		}
	}
}

// TestREADMECompose: the README's compose file wires OneID to MySQL with
// health checks, and is valid YAML (checked with python3's yaml module when
// the machine has it; the module has no YAML library of its own).
func TestREADMECompose(t *testing.T) {
	root := moduleRoot(t)
	readme := read(t, filepath.Join(root, "README.md"))
	m := regexp.MustCompile("(?s)```yaml\n(# compose.yaml.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README has no ```yaml block starting with # compose.yaml")
	}
	compose := m[1]
	for _, want := range []string{"image: mysql:8", "healthcheck:", "condition: service_healthy",
		"ONEID_DATABASE_URL: mysql://", "@mysql:3306/oneid", "ONEID_SECRET_KEY:", "utf8mb4_bin", "build: ."} {
		if !strings.Contains(compose, want) {
			t.Errorf("the compose file lacks %q", want)
		}
	}
	if strings.Contains(compose, "\t") {
		t.Error("the compose file has a tab: YAML indents with spaces")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("python3 not installed: the YAML syntax is not checked")
		return
	}
	check := exec.Command(py, "-c", `
import sys, yaml
doc = yaml.safe_load(sys.stdin)
s = doc["services"]
assert set(s) == {"mysql", "oneid"}, s
assert s["oneid"]["depends_on"]["mysql"]["condition"] == "service_healthy"
assert s["mysql"]["healthcheck"]["test"][0] == "CMD"
assert s["oneid"]["environment"]["ONEID_DATABASE_URL"].startswith("mysql://")
print("ok")
`)
	check.Stdin = strings.NewReader(compose)
	out, err := check.CombinedOutput()
	if strings.Contains(string(out), "No module named 'yaml'") {
		t.Log("python3 has no yaml module: the YAML syntax is not checked")
		return
	}
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("the compose file does not parse as expected: %v\n%s", err, out)
	}
}

// TestREADMEScreenshots: the pictures the README shows exist, are small and
// are not embedded into the binary.
func TestREADMEScreenshots(t *testing.T) {
	root := moduleRoot(t)
	readme := read(t, filepath.Join(root, "README.md"))
	imgs := regexp.MustCompile(`!\[[^\]]*\]\(([^)]+\.png)\)`).FindAllStringSubmatch(readme, -1)
	if len(imgs) < 2 {
		t.Fatalf("README shows %d screenshots, want the customers page and a profile", len(imgs))
	}
	for _, m := range imgs {
		fi, err := os.Stat(filepath.Join(root, m[1]))
		if err != nil {
			t.Errorf("README shows %s: %v", m[1], err)
			continue
		}
		if fi.Size() > 300<<10 {
			t.Errorf("%s is %d KB; keep screenshots under 300 KB", m[1], fi.Size()>>10)
		}
	}
	embed := read(t, filepath.Join(root, "static/embed.go"))
	if strings.Contains(embed, "docs") {
		t.Error("static/embed.go embeds static/docs: the README's pictures would grow the binary")
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section is the README text from a heading to the next heading of its level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	rest := doc[i+len(heading)+2:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
