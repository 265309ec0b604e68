//go:build unix

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/amiforge/packer-plugin-ami/builder/packertest"
	"github.com/amiforge/packer-plugin-ami/sdk/awstest"
)

// The migration corpus (testdata/migration) holds templates written for
// HashiCorp's amazon-ebs and amazon-instance builders, in the styles
// platform teams use: HCL2 (*.pkr.hcl) and legacy JSON (*.json). Each must
// keep working once migrate has renamed its builder types to ami-ebs and
// ami-instance. Templates with a "# build: yes" line can run against the
// local emulator after localize.

// minCorpus is the least number of templates the migration corpus must hold.
const minCorpus = 20

// migrationDir is the corpus directory.
var migrationDir = filepath.Join("testdata", "migration")

// pendingDir holds templates in the same style that use options the
// builders do not have yet (see pendingOptions); they are checked to fail
// with exactly those options.
var pendingDir = filepath.Join("testdata", "migration-pending")

// pendingOptions lists the templates of pendingDir, which `packer validate`
// rejects today because ami-ebs or ami-instance lacks HashiCorp options they
// use: file → the unknown argument, block or configuration keys packer
// reports, sorted. TestMigrationCorpusValidates checks that each of these
// files fails with exactly these keys and nothing else. When the builders
// gain the options, the file moves to migrationDir and its entry goes.
//
// It is empty: every template of the corpus validates.
var pendingOptions = map[string][]string{}

// pendingErrors lists the corpus templates that fail `packer validate`
// today for a reason other than an unknown option: file → texts that each
// of the other errors reported contains. Every listed text must be
// reported, and every error must contain one of them. It is empty: every
// other template validates.
var pendingErrors = map[string][]string{}

// corpusFile is one template of the migration corpus.
type corpusFile struct {
	Name string // base name, e.g. "dev-al2023-base.pkr.hcl"
	Path string
	Src  string
}

// JSON reports whether the template is a legacy JSON template.
func (f corpusFile) JSON() bool { return strings.HasSuffix(f.Name, ".json") }

// Buildable reports whether the template carries a "# build: yes" line:
// it can be built against the local emulator once localized.
func (f corpusFile) Buildable() bool { return buildMarked(f.Src) }

// buildMarked reports whether src has a "# build: yes" line.
func buildMarked(src string) bool {
	for _, l := range strings.Split(src, "\n") {
		if strings.TrimSpace(l) == "# build: yes" {
			return true
		}
	}
	return false
}

// corpusFiles reads the migration corpus, HCL2 templates first, each group
// sorted by name; it fails the test when the corpus has fewer than
// minCorpus templates.
func corpusFiles(t *testing.T) []corpusFile {
	t.Helper()
	files := templatesIn(t, migrationDir)
	if len(files) < minCorpus {
		t.Fatalf("%d templates in %s, want at least %d", len(files), migrationDir, minCorpus)
	}
	return files
}

// templatesIn reads the templates of dir, HCL2 first, each group sorted by
// name.
func templatesIn(t *testing.T, dir string) []corpusFile {
	t.Helper()
	var files []corpusFile
	for _, pattern := range []string{"*.pkr.hcl", "*.json"} {
		paths, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(paths)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, corpusFile{Name: filepath.Base(p), Path: p, Src: string(b)})
		}
	}
	return files
}

// pluginVersionConstraint is the version constraint migrate writes for this
// plugin in required_plugins.
const pluginVersionConstraint = ">= 0.1.0"

var (
	// HCL2: the type label of a source block, and references to a source
	// (in sources lists and in build-level source blocks).
	hclSourceTypeRE = regexp.MustCompile(`\b(source\s+)"amazon-(ebs|instance)"`)
	hclSourceRefRE  = regexp.MustCompile(`\bsource\.amazon-(ebs|instance)\.`)
	// HCL2 only/except lists name builds "<type>.<name>".
	hclOnlyExceptRE = regexp.MustCompile(`\b(only|except)(\s*=\s*)\[([^\]]*)\]`)
	hclBuildRefRE   = regexp.MustCompile(`"amazon-(ebs|instance)\.`)
	// required_plugins and HashiCorp's Amazon plugin entry in it.
	requiredPluginsRE = regexp.MustCompile(`\brequired_plugins\s*\{`)
	amazonPluginRE    = regexp.MustCompile(`[A-Za-z0-9_-]+\s*=\s*\{[^{}]*"github\.com/hashicorp/amazon"[^{}]*\}`)
)

// migrate returns src, a template for HashiCorp's amazon-ebs and
// amazon-instance builders, moved to this plugin; name is the file name and
// tells legacy JSON (*.json) from HCL2. Only the builder type changes, with
// what refers to it:
//
//   - HCL2: source "amazon-ebs" → source "ami-ebs", source.amazon-ebs. →
//     source.ami-ebs., "amazon-ebs.<name>" in only/except lists →
//     "ami-ebs.<name>", and the required_plugins entry for
//     github.com/hashicorp/amazon → ami = { source = PluginSource, version };
//   - JSON: the "type" of a builder and "amazon-ebs" in the only/except
//     lists of provisioners and post-processors (a builder without a name
//     is named by its type).
//
// and the same for amazon-instance → ami-instance. Everything else, such as
// a tag that mentions amazon-ebs, is left as it is (in HCL2, a comment
// quoting one of the forms above changes too).
func migrate(name, src string) string {
	if strings.HasSuffix(name, ".json") {
		return migrateJSON(src)
	}
	src = hclSourceTypeRE.ReplaceAllString(src, `${1}"ami-${2}"`)
	src = hclSourceRefRE.ReplaceAllString(src, `source.ami-${1}.`)
	src = hclOnlyExceptRE.ReplaceAllStringFunc(src, func(m string) string {
		return hclBuildRefRE.ReplaceAllString(m, `"ami-${1}.`)
	})
	return migrateRequiredPlugins(src)
}

// migrateRequiredPlugins replaces the github.com/hashicorp/amazon entry of
// every required_plugins block in src by this plugin's entry, keeping the
// entry's layout (one line or one line per attribute) and indentation.
func migrateRequiredPlugins(src string) string {
	var b strings.Builder
	for {
		loc := requiredPluginsRE.FindStringIndex(src)
		if loc == nil {
			b.WriteString(src)
			return b.String()
		}
		end := closingBrace(src, loc[1])
		last := 0
		for _, m := range amazonPluginRE.FindAllStringIndex(src[:end], -1) {
			if m[0] < loc[1] {
				continue
			}
			entry := fmt.Sprintf(`ami = { source = %q, version = %q }`, packertest.PluginSource, pluginVersionConstraint)
			if strings.Contains(src[m[0]:m[1]], "\n") {
				entry = fmt.Sprintf("ami = {\n%[1]s  source  = %[2]q\n%[1]s  version = %[3]q\n%[1]s}",
					lineIndent(src[:m[0]]), packertest.PluginSource, pluginVersionConstraint)
			}
			b.WriteString(src[last:m[0]])
			b.WriteString(entry)
			last = m[1]
		}
		b.WriteString(src[last:end])
		src = src[end:]
	}
}

// hashicorpTypes maps HashiCorp's builder types to this plugin's.
var hashicorpTypes = map[string]string{"amazon-ebs": "ami-ebs", "amazon-instance": "ami-instance"}

// migrateJSON is migrate for a legacy JSON template. It walks the JSON
// tokens, so that only builder types and only/except entries change and
// the rest of the text, layout included, stays as it is. A template that
// is not valid JSON is returned as it is.
func migrateJSON(src string) string {
	type frame struct {
		obj     bool
		wantKey bool   // in an object: the next token is a key
		key     string // in an object: the key of the current value
		idx     int    // in an array: the index of the current value
	}
	var stack []*frame
	// path returns the keys and indexes leading to the current value.
	path := func() []string {
		p := make([]string, len(stack))
		for i, f := range stack {
			if f.obj {
				p[i] = f.key
			} else {
				p[i] = fmt.Sprint(f.idx)
			}
		}
		return p
	}
	// done moves the innermost container past the value just read.
	done := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.obj {
			top.wantKey = true
		} else {
			top.idx++
		}
	}
	type edit struct {
		end      int
		from, to string
	}
	var edits []edit
	dec := json.NewDecoder(strings.NewReader(src))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return src
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				done()
				continue
			}
			stack[n-1].key, stack[n-1].wantKey = fmt.Sprint(tok), false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		v, isString := tok.(string)
		to, known := hashicorpTypes[v]
		p := path()
		builderType := len(p) == 3 && p[0] == "builders" && p[2] == "type"
		reference := len(p) >= 3 && (p[0] == "provisioners" || p[0] == "post-processors") &&
			(p[len(p)-2] == "only" || p[len(p)-2] == "except")
		if isString && known && (builderType || reference) {
			edits = append(edits, edit{end: int(dec.InputOffset()), from: `"` + v + `"`, to: `"` + to + `"`})
		}
		done()
	}
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		if start := e.end - len(e.from); start >= 0 && src[start:e.end] == e.from {
			src = src[:start] + e.to + src[e.end:]
		}
	}
	return src
}

// closingBrace returns the index in src of the brace closing the block
// whose body starts at start, skipping quoted strings; len(src) when the
// block is not closed.
func closingBrace(src string, start int) int {
	depth := 1
	for i := start; i < len(src); i++ {
		switch src[i] {
		case '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return len(src)
}

// lineIndent returns the leading blanks of the last line of s.
func lineIndent(s string) string {
	line := s[strings.LastIndex(s, "\n")+1:]
	return line[:len(line)-len(strings.TrimLeft(line, " \t"))]
}

func TestMigrate(t *testing.T) {
	tests := []struct {
		name     string // file name: *.json is legacy JSON
		src      string
		want     string
		wantSame bool // want is src
	}{
		{
			name: "hcl2 source, references and required_plugins",
			src: `packer {
  required_plugins {
    amazon = {
      version = ">= 1.2.8"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

source "amazon-ebs" "web" {
  ami_name = "web"
  tags = {
    BuiltWith = "packer amazon-ebs"
    Plugin    = "github.com/hashicorp/amazon"
  }
}

build {
  sources = ["source.amazon-ebs.web"]
}
`,
			want: `packer {
  required_plugins {
    ami = {
      source  = "github.com/amiforge/ami"
      version = ">= 0.1.0"
    }
  }
}

source "ami-ebs" "web" {
  ami_name = "web"
  tags = {
    BuiltWith = "packer amazon-ebs"
    Plugin    = "github.com/hashicorp/amazon"
  }
}

build {
  sources = ["source.ami-ebs.web"]
}
`,
		},
		{
			name: "hcl2 one-line plugin entry next to another plugin",
			src: `packer {
  required_version = ">= 1.9.0"
  required_plugins {
    amazon  = { source = "github.com/hashicorp/amazon", version = "~> 1" }
    ansible = { source = "github.com/hashicorp/ansible", version = "~> 1" }
  }
}
`,
			want: `packer {
  required_version = ">= 1.9.0"
  required_plugins {
    ami = { source = "github.com/amiforge/ami", version = ">= 0.1.0" }
    ansible = { source = "github.com/hashicorp/ansible", version = "~> 1" }
  }
}
`,
		},
		{
			name: "hcl2 build-level source blocks and only/except",
			src: `build {
  source "source.amazon-ebs.base" {
    name = "web"
  }
  source "source.amazon-instance.store" {
    name = "cache"
  }
  provisioner "shell" {
    only   = ["amazon-ebs.web", "amazon-instance.cache"]
    inline = ["echo amazon-ebs.web"]
  }
  post-processor "manifest" {
    except = [ "amazon-ebs.web" ]
  }
}
`,
			want: `build {
  source "source.ami-ebs.base" {
    name = "web"
  }
  source "source.ami-instance.store" {
    name = "cache"
  }
  provisioner "shell" {
    only   = ["ami-ebs.web", "ami-instance.cache"]
    inline = ["echo amazon-ebs.web"]
  }
  post-processor "manifest" {
    except = [ "ami-ebs.web" ]
  }
}
`,
		},
		{
			name: "hcl2 amazon-instance without a packer block",
			src: `source "amazon-instance" "store" {
  s3_bucket = "amazon-instance-bundles"
}
build {
  sources = ["source.amazon-instance.store"]
}
`,
			want: `source "ami-instance" "store" {
  s3_bucket = "amazon-instance-bundles"
}
build {
  sources = ["source.ami-instance.store"]
}
`,
		},
		{
			name:     "hcl2 other builders untouched",
			src:      "source \"amazon-chroot\" \"c\" {}\nsource \"null\" \"n\" {}\nbuild {\n  sources = [\"source.amazon-chroot.c\"]\n}\n",
			wantSame: true,
		},
		{
			name: "json type and only",
			src: `{
  "variables": {"builder": "amazon-ebs"},
  "builders": [
    {"type": "amazon-ebs", "tags": {"Tool": "amazon-ebs", "type": "amazon-ebs"}},
    {"type" : "amazon-instance", "name": "store"}
  ],
  "provisioners": [
    {"type": "shell", "only": ["amazon-ebs", "store"], "inline": ["echo amazon-ebs"]},
    {"type": "shell", "except": [ "amazon-ebs" ], "inline": ["true"]}
  ],
  "post-processors": [{"type": "manifest"}, [{"type": "manifest", "only": ["amazon-instance"]}]]
}
`,
			want: `{
  "variables": {"builder": "amazon-ebs"},
  "builders": [
    {"type": "ami-ebs", "tags": {"Tool": "amazon-ebs", "type": "amazon-ebs"}},
    {"type" : "ami-instance", "name": "store"}
  ],
  "provisioners": [
    {"type": "shell", "only": ["ami-ebs", "store"], "inline": ["echo amazon-ebs"]},
    {"type": "shell", "except": [ "ami-ebs" ], "inline": ["true"]}
  ],
  "post-processors": [{"type": "manifest"}, [{"type": "manifest", "only": ["ami-instance"]}]]
}
`,
		},
		{
			name:     "json already migrated",
			src:      `{"builders": [{"type": "ami-ebs"}], "provisioners": [{"type": "shell", "only": ["ami-ebs"]}]}`,
			wantSame: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := "template.pkr.hcl"
			if strings.HasPrefix(tc.name, "json") {
				file = "template.json"
			}
			want := tc.want
			if tc.wantSame {
				want = tc.src
			}
			got := migrate(file, tc.src)
			if got != want {
				t.Errorf("migrate(%s):\n%s\nwant:\n%s", file, got, want)
			}
			if again := migrate(file, got); again != got {
				t.Errorf("migrate is not idempotent; second pass:\n%s", again)
			}
		})
	}
}

// regionRE finds quoted AWS region names.
var regionRE = regexp.MustCompile(`"[a-z]{2}(-gov)?-[a-z]+-[0-9]"`)

// TestMigrationCorpusShape checks the corpus itself, without packer: every
// template starts with its description, is written for HashiCorp's builders
// only, changes under migrate, and "# build: yes" appears only on HCL2
// ami-ebs templates that the local emulator can run, in the regions the
// world watches; each of those stays valid HCL after migrate and localize.
func TestMigrationCorpusShape(t *testing.T) {
	files := corpusFiles(t)
	var nHCL, nJSON, nBuild int
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			if strings.Contains(f.Src, "ami-ebs") || strings.Contains(f.Src, "ami-instance") || strings.Contains(f.Src, packertest.PluginSource) {
				t.Errorf("uses this plugin's names; the corpus is written for HashiCorp's builders")
			}
			if migrate(f.Name, f.Src) == f.Src {
				t.Errorf("migrate changes nothing")
			}
			if f.JSON() {
				nJSON++
				var tpl struct {
					Comment  string           `json:"_comment"`
					Builders []map[string]any `json:"builders"`
				}
				if err := json.Unmarshal([]byte(f.Src), &tpl); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
				if !strings.HasPrefix(strings.TrimSpace(f.Src), `{`+"\n"+`  "_comment": `) || tpl.Comment == "" {
					t.Errorf("does not start with a \"_comment\" describing it")
				}
				if f.Buildable() {
					t.Errorf("JSON templates carry no \"# build: yes\" mark")
				}
				return
			}
			nHCL++
			if !strings.HasPrefix(f.Src, "# ") {
				t.Errorf("does not start with a comment describing it")
			}
			if !f.Buildable() {
				return
			}
			nBuild++
			for _, r := range regionRE.FindAllString(f.Src, -1) {
				if !slices.Contains(allRegions, strings.Trim(r, `"`)) {
					t.Errorf("marked \"# build: yes\" but names region %s; the local world checks %q for leaks", r, allRegions)
				}
			}
			for _, notLocal := range []string{`"amazon-instance"`, "encrypt_boot", "deprecate_at", "deregistration_protection", `data "`} {
				if strings.Contains(f.Src, notLocal) {
					t.Errorf("marked \"# build: yes\" but uses %s, which the local emulator cannot run", notLocal)
				}
			}
			out, err := localize(migrate(f.Name, f.Src), loopback{Port: 2222, User: "builder", KeyFile: "/tmp/key"})
			if err != nil {
				t.Fatalf("localize: %v", err)
			}
			if _, diags := hclsyntax.ParseConfig([]byte(out), f.Name, hcl.InitialPos); diags.HasErrors() {
				t.Errorf("localized template does not parse: %v", diags)
			}
		})
	}
	if nJSON == 0 || nHCL == 0 || nBuild == 0 {
		t.Errorf("%d HCL2, %d JSON and %d buildable templates, want some of each", nHCL, nJSON, nBuild)
	}
}

// TestMigrationCorpusValidates migrates every corpus template and runs
// `packer validate` on it with the plugin installed: each must pass, except
// those in pendingOptions and pendingErrors, which must fail with exactly
// the errors listed there. No run may make an AWS call. The X.509
// certificate and key that the amazon-instance templates name are written
// beside the templates (certs/ under the template directory). AWS_REGION is
// unset, so that every template must name its region.
func TestMigrationCorpusValidates(t *testing.T) {
	files := corpusFiles(t)
	pending := templatesIn(t, pendingDir)
	for name := range pendingOptions {
		if !slices.ContainsFunc(pending, func(f corpusFile) bool { return f.Name == name }) {
			t.Errorf("pendingOptions names %s, which is not in %s", name, pendingDir)
		}
	}
	for _, f := range pending {
		if _, ok := pendingOptions[f.Name]; !ok {
			t.Errorf("%s is in %s but not in pendingOptions; once it validates, move it to %s", f.Name, pendingDir, migrationDir)
		}
	}
	files = append(files, pending...)
	for name := range pendingErrors {
		if !slices.ContainsFunc(files, func(f corpusFile) bool { return f.Name == name }) {
			t.Errorf("pendingErrors names %s, which is not in the corpus", name)
		}
	}

	w := theWorld(t)
	proxy := awstest.NewProxy(t, w.moto.Endpoint, awstest.ProxyOptions{})
	env := append(awstest.Env(proxy.URL, buildRegion), "AWS_REGION=", "AWS_DEFAULT_REGION=")
	dir := t.TempDir()
	writeX509Pair(t, filepath.Join(dir, "certs"))
	p, err := packertest.Setup(context.Background(), dir, packertest.Options{Plugin: w.plugin, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	proxy.Reset()

	t.Run("group", func(t *testing.T) {
		for _, f := range files {
			t.Run(f.Name, func(t *testing.T) {
				t.Parallel()
				res, err := p.Run(context.Background(), packertest.RunOptions{
					Args: []string{"validate"}, Template: migrate(f.Name, f.Src), TemplateName: f.Name,
				})
				if err != nil {
					t.Fatalf("run packer: %v", err)
				}
				out := res.Output()
				if strings.Contains(out, "panic") {
					t.Fatalf("packer validate panicked:\n%s", out)
				}
				wantKeys, wantErrs := pendingOptions[f.Name], pendingErrors[f.Name]
				if len(wantKeys) == 0 && len(wantErrs) == 0 {
					if res.ExitCode != 0 {
						t.Errorf("packer validate of the migrated template failed (exit %d):\n%s", res.ExitCode, out)
					}
					return
				}
				if res.ExitCode == 0 {
					t.Fatalf("packer validate now accepts the migrated template; remove it from pendingOptions/pendingErrors")
				}
				keys, others := validateErrors(out)
				if !slices.Equal(keys, wantKeys) {
					t.Errorf("unknown options reported %q, pendingOptions lists %q:\n%s", keys, wantKeys, out)
				}
				for _, o := range others {
					if !slices.ContainsFunc(wantErrs, func(w string) bool { return strings.Contains(o, w) }) {
						t.Errorf("unexpected error %q:\n%s", o, out)
					}
				}
				for _, w := range wantErrs {
					if !slices.ContainsFunc(others, func(o string) bool { return strings.Contains(o, w) }) {
						t.Errorf("pendingErrors expects an error containing %q, not reported:\n%s", w, out)
					}
				}
			})
		}
	})
	if calls := proxy.Calls(); len(calls) != 0 {
		t.Errorf("packer validate made %d AWS calls, want none: %v", len(calls), proxy.Actions())
	}
}

var (
	// unknownKeyRE finds the option of an unknown-option error: HCL2's
	// "Unsupported argument" and "Unsupported block type", and the
	// plugin's decoder for legacy JSON templates.
	unknownKeyRE = regexp.MustCompile(`An argument named "([^"]+)" is not expected here|Blocks of type "([^"]+)" are not expected here|unknown configuration key: '"([^"]+)"'`)
	// knownHeadings matches packer's error headings whose details are
	// read from the lines that follow them.
	knownHeadings = regexp.MustCompile(`^Error: (Unsupported argument|Unsupported block type|Failed to prepare build|[0-9]+ error\(s\) occurred:)`)
)

// validateErrors splits the output of a failed `packer validate` into the
// unknown options it reports (sorted, without duplicates) and its other
// errors: the builders' own errors (the "* " lines after "Failed to prepare
// build") and any error heading packer prints for other reasons.
func validateErrors(out string) (unknownKeys, others []string) {
	for _, m := range unknownKeyRE.FindAllStringSubmatch(out, -1) {
		unknownKeys = append(unknownKeys, m[1]+m[2]+m[3])
	}
	slices.Sort(unknownKeys)
	unknownKeys = slices.Compact(unknownKeys)
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "* "):
			if !unknownKeyRE.MatchString(l) {
				others = append(others, strings.TrimPrefix(l, "* "))
			}
		case strings.HasPrefix(l, "Error: "):
			if !knownHeadings.MatchString(l) {
				others = append(others, l)
			}
		}
	}
	return unknownKeys, others
}

func TestValidateErrors(t *testing.T) {
	hcl2 := `Error: Unsupported argument

  on t.pkr.hcl line 22:
  (source code not available)

An argument named "ami_users" is not expected here.

Error: Unsupported block type

  on t.pkr.hcl line 30:
  (source code not available)

Blocks of type "deregistration_protection" are not expected here.

Error: Unsupported argument

  on t.pkr.hcl line 41:
  (source code not available)

An argument named "ami_users" is not expected here.
`
	legacy := `Error: Failed to prepare build: "ami-ebs"

2 errors occurred:
	* unknown configuration key: '"spot_price"'
	* unknown configuration key: '"ami_groups"'
`
	prepare := `Error: Failed to prepare build: "ami-instance.scratch"

1 error occurred:
	* ec2_cert_path: required: Amazon's EC2 certificate

Error: Missing required argument
`
	hcl2Prepare := `Error: 2 error(s) occurred:

* ec2_cert_path: required: Amazon's EC2 certificate
* s3_bucket: required

  on instance-store-scratch.pkr.hcl line 28:
  (source code not available)
`
	tests := []struct {
		name       string
		out        string
		wantKeys   []string
		wantOthers []string
	}{
		{"hcl2", hcl2, []string{"ami_users", "deregistration_protection"}, nil},
		{"legacy json", legacy, []string{"ami_groups", "spot_price"}, nil},
		{"prepare errors", prepare, nil, []string{"ec2_cert_path: required: Amazon's EC2 certificate", "Error: Missing required argument"}},
		{"hcl2 prepare errors", hcl2Prepare, nil, []string{"ec2_cert_path: required: Amazon's EC2 certificate", "s3_bucket: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, others := validateErrors(tc.out)
			if !slices.Equal(keys, tc.wantKeys) || !slices.Equal(others, tc.wantOthers) {
				t.Errorf("validateErrors = %q, %q; want %q, %q", keys, others, tc.wantKeys, tc.wantOthers)
			}
		})
	}
}

// writeX509Pair writes a self-signed RSA certificate and its key to
// dir/x509-cert.pem and dir/x509-key.pem, as the amazon-instance templates
// of the corpus expect them.
func writeX509Pair(t *testing.T, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "migration corpus"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"x509-cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"x509-key.pem":  {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// loopback is where the ami-ebs builds of a localized template connect:
// the OpenSSH server on 127.0.0.1 that stands in for the build instance.
type loopback struct {
	Port int
	User string
	// KeyFile is the client key for the server; empty leaves the
	// template's key settings (a temporary key pair, by default) alone.
	KeyFile string
}

// localize returns src, a migrated template (HCL2 or legacy JSON, told
// apart by its content), pointed at the local emulator: every ami-ebs
// source block or builder that connects over SSH gets ssh_host =
// "127.0.0.1", ssh_port, ssh_username and, when set, ssh_private_key_file
// of to, replacing the template's own values of these. Nothing else
// changes; builds with communicator = "none" and ami-instance builds are
// left alone. The emulator's endpoint comes from the environment
// (awstest.Env). JSON templates are re-encoded with their keys sorted.
func localize(src string, to loopback) (string, error) {
	if json.Valid([]byte(src)) {
		return localizeJSON(src, to)
	}
	settings := []struct{ key, value string }{
		{"ssh_host", `"127.0.0.1"`},
		{"ssh_port", fmt.Sprint(to.Port)},
		{"ssh_username", strconv.Quote(to.User)},
		// The "instance" is this machine: its authorized_keys are not the
		// build's to clean.
		{"ssh_clear_authorized_keys", "false"},
	}
	if to.KeyFile != "" {
		settings = append(settings, struct{ key, value string }{"ssh_private_key_file", strconv.Quote(to.KeyFile)})
	}
	f, diags := hclsyntax.ParseConfig([]byte(src), "template.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return "", fmt.Errorf("localize: parse HCL2 template: %w", diags)
	}
	// Edits are byte ranges of src and their new text, applied from the
	// end so that earlier offsets stay valid.
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "source" || len(b.Labels) == 0 || b.Labels[0] != "ami-ebs" {
			continue
		}
		if c, ok := b.Body.Attributes["communicator"]; ok {
			if v, d := c.Expr.Value(nil); d.HasErrors() || v.Type() != cty.String || v.AsString() != "ssh" {
				continue
			}
		}
		// New attributes go on lines of their own before the closing
		// brace, indented like the block's first attribute.
		indent := "  "
		for _, a := range b.Body.Attributes {
			indent = lineIndent(src[:a.SrcRange.Start.Byte])
			break
		}
		var added strings.Builder
		for _, s := range settings {
			if a, ok := b.Body.Attributes[s.key]; ok {
				edits = append(edits, edit{a.SrcRange.Start.Byte, a.SrcRange.End.Byte, s.key + " = " + s.value})
				continue
			}
			fmt.Fprintf(&added, "%s%s = %s\n", indent, s.key, s.value)
		}
		if added.Len() > 0 {
			closing := b.CloseBraceRange.Start.Byte
			lineStart := strings.LastIndex(src[:closing], "\n") + 1
			edits = append(edits, edit{lineStart, lineStart, added.String()})
		}
	}
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	for _, e := range edits {
		src = src[:e.start] + e.text + src[e.end:]
	}
	return src, nil
}

// localizeJSON is localize for a legacy JSON template.
func localizeJSON(src string, to loopback) (string, error) {
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var tpl map[string]any
	if err := dec.Decode(&tpl); err != nil {
		return "", fmt.Errorf("localize: parse JSON template: %w", err)
	}
	builders, _ := tpl["builders"].([]any)
	for _, b := range builders {
		m, ok := b.(map[string]any)
		if !ok || m["type"] != "ami-ebs" {
			continue
		}
		if c, ok := m["communicator"]; ok && c != "ssh" {
			continue
		}
		m["ssh_host"] = "127.0.0.1"
		m["ssh_port"] = to.Port
		m["ssh_username"] = to.User
		m["ssh_clear_authorized_keys"] = false
		if to.KeyFile != "" {
			m["ssh_private_key_file"] = to.KeyFile
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tpl); err != nil {
		return "", fmt.Errorf("localize: encode JSON template: %w", err)
	}
	return out.String(), nil
}

func TestLocalize(t *testing.T) {
	to := loopback{Port: 2222, User: "builder", KeyFile: "/keys/id_ed25519"}
	tests := []struct {
		name string
		to   loopback
		src  string
		want string
	}{
		{
			name: "hcl2 ssh source gets the loopback sshd, others stay",
			to:   to,
			src: `source "ami-ebs" "web" {
  region       = "us-east-1"
  ssh_username = "ec2-user"
  ssh_timeout  = "10m"

  tags = {
    Name = "web"
  }
}

source "ami-ebs" "retag" {
  communicator = "none"
}

source "ami-instance" "store" {
  ssh_username = "ec2-user"
}

build {
  sources = ["source.ami-ebs.web", "source.ami-ebs.retag"]
  source "source.ami-ebs.web" {
    name = "api"
  }
}
`,
			want: `source "ami-ebs" "web" {
  region       = "us-east-1"
  ssh_username = "builder"
  ssh_timeout  = "10m"

  tags = {
    Name = "web"
  }
  ssh_host = "127.0.0.1"
  ssh_port = 2222
  ssh_clear_authorized_keys = false
  ssh_private_key_file = "/keys/id_ed25519"
}

source "ami-ebs" "retag" {
  communicator = "none"
}

source "ami-instance" "store" {
  ssh_username = "ec2-user"
}

build {
  sources = ["source.ami-ebs.web", "source.ami-ebs.retag"]
  source "source.ami-ebs.web" {
    name = "api"
  }
}
`,
		},
		{
			name: "hcl2 explicit ssh, template key kept without KeyFile",
			to:   loopback{Port: 40022, User: "root"},
			src: `source "ami-ebs" "a" {
	communicator         = "ssh"
	ssh_private_key_file = "~/.ssh/build"
	ssh_port             = 22
}
`,
			want: `source "ami-ebs" "a" {
	communicator         = "ssh"
	ssh_private_key_file = "~/.ssh/build"
	ssh_port = 40022
	ssh_host = "127.0.0.1"
	ssh_username = "root"
	ssh_clear_authorized_keys = false
}
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := localize(tc.src, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("localize:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		src := `{
  "_comment": "two builders",
  "variables": {"region": "us-east-1"},
  "builders": [
    {"type": "ami-ebs", "name": "app", "region": "{{user ` + "`region`" + `}}", "ssh_username": "ec2-user", "volume_size": 8},
    {"type": "ami-ebs", "name": "retag", "communicator": "none"},
    {"type": "ami-instance", "ssh_username": "ec2-user"}
  ],
  "provisioners": [{"type": "shell", "inline": ["echo <ok> & done"]}]
}`
		got, err := localize(src, to)
		if err != nil {
			t.Fatal(err)
		}
		want := `{
  "_comment": "two builders",
  "variables": {"region": "us-east-1"},
  "builders": [
    {"type": "ami-ebs", "name": "app", "region": "{{user ` + "`region`" + `}}", "ssh_username": "builder", "volume_size": 8,
     "ssh_host": "127.0.0.1", "ssh_port": 2222, "ssh_clear_authorized_keys": false, "ssh_private_key_file": "/keys/id_ed25519"},
    {"type": "ami-ebs", "name": "retag", "communicator": "none"},
    {"type": "ami-instance", "ssh_username": "ec2-user"}
  ],
  "provisioners": [{"type": "shell", "inline": ["echo <ok> & done"]}]
}`
		var gotV, wantV any
		if err := json.Unmarshal([]byte(got), &gotV); err != nil {
			t.Fatalf("localized JSON does not parse: %v\n%s", err, got)
		}
		if err := json.Unmarshal([]byte(want), &wantV); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotV, wantV) {
			t.Errorf("localize:\n%s\nwant the same as:\n%s", got, want)
		}
		if !strings.Contains(got, "echo <ok> & done") {
			t.Errorf("localize escaped characters that were plain in the template:\n%s", got)
		}
	})
}
