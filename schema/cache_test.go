package schema

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cachedLoad loads srcs with a new Loader on dir, as a new process would.
func cachedLoad(dir string, srcs []Source) (*Mesh, int, error) {
	l := &Loader{CacheDir: dir}
	m, err := l.LoadSources(srcs...)
	return m, l.memo.evaluated, err
}

// TestCacheMatchesCold loads every input of loadCases three times, as
// three processes sharing a cache directory: the first fills it, the next
// two read it. Every load must give the mesh and the error text a load
// without the cache gives, and a valid input must evaluate no service
// once the cache holds it.
func TestCacheMatchesCold(t *testing.T) {
	for _, tc := range loadCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want, wantErr := LoadSources(tc.srcs...)
			for run := range 3 {
				got, evaluated, err := cachedLoad(dir, tc.srcs)
				if fmt.Sprint(wantErr) != fmt.Sprint(err) {
					t.Fatalf("run %d: errors differ:\nwithout the cache:\n%v\nwith it:\n%v", run, wantErr, err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("run %d: mesh (-without the cache +with it):\n%s", run, d)
				}
				if run > 0 && wantErr == nil && evaluated != 0 {
					t.Errorf("run %d: evaluated %d services, want 0 (all cached)", run, evaluated)
				}
			}
		})
	}
}

// TestCacheOnlyValidEntries: an invalid entry is never remembered, so it
// is evaluated, and reported the same, on every run; its valid neighbours
// are remembered; and a fixed entry is remembered from then on.
func TestCacheOnlyValidEntries(t *testing.T) {
	dir := t.TempDir()
	mesh := func(ports ...int) []Source {
		var b strings.Builder
		for i, p := range ports {
			fmt.Fprintf(&b, "services: \"shop/s%d\": {port: %d, routes: [{name: \"r\", pathRegex: \"/\"}]}\n", i, p)
		}
		return []Source{{Name: "mesh.cue", Data: []byte(b.String())}}
	}
	_, wantErr := LoadSources(mesh(80, 0, 0, 83)...)
	if wantErr == nil {
		t.Fatal("port 0 loaded")
	}
	for _, step := range []struct {
		name      string
		srcs      []Source
		evaluated int
		wantErr   bool
	}{
		{"first", mesh(80, 0, 0, 83), 4, true},
		{"again", mesh(80, 0, 0, 83), 2, true},
		{"one fixed", mesh(80, 81, 0, 83), 2, true},
		{"both fixed", mesh(80, 81, 82, 83), 1, false},
		{"unchanged", mesh(80, 81, 82, 83), 0, false},
		// The cache keeps recent entries a load no longer has.
		{"back to the first", mesh(80, 81, 82, 83, 84), 1, false},
		{"one removed", mesh(80, 81, 82, 83), 0, false},
	} {
		_, evaluated, err := cachedLoad(dir, step.srcs)
		if (err != nil) != step.wantErr {
			t.Fatalf("%s: error %v", step.name, err)
		}
		if err != nil && err.Error() != wantErr.Error() && step.name != "one fixed" {
			t.Errorf("%s: error\n%v\nwant\n%v", step.name, err, wantErr)
		}
		if evaluated != step.evaluated {
			t.Errorf("%s: evaluated %d services, want %d", step.name, evaluated, step.evaluated)
		}
	}
}

// TestCacheFile: the file is the owner's only, is ignored (and replaced)
// when unreadable or written for another schema, and is not written again
// when nothing changed.
func TestCacheFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	srcs := []Source{{Name: "mesh.cue", Data: []byte(`services: "shop/a": {port: 80}` + "\n" + `services: "shop/b": {port: 81}`)}}
	want, err := LoadSources(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, cacheFileName(DefaultPath))

	if _, _, err := cachedLoad(dir, srcs); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, file: 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), mode)
		}
	}
	written, _ := os.ReadFile(file)

	// Nothing changed: the file is not rewritten (a run reads, only).
	if err := os.Chmod(file, 0o400); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(file)
	if _, n, err := cachedLoad(dir, srcs); err != nil || n != 0 {
		t.Fatalf("warm load: %d evaluated, %v", n, err)
	}
	after, _ := os.Stat(file)
	if !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
		t.Error("an unchanged load rewrote the cache file")
	}
	os.Chmod(file, 0o600)

	for name, content := range map[string][]byte{
		"garbage":         []byte("{not json"),
		"truncated":       written[:len(written)/2],
		"other schema":    bytes.Replace(written, []byte(cacheFingerprint()), []byte(strings.Repeat("0", 64)), 1),
		"a wrong service": bytes.Replace(written, []byte(`"port":80`), []byte(`"port":8080`), 1),
	} {
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		got, n, err := cachedLoad(dir, srcs)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "a wrong service" {
			// The cache is trusted as the user's own file: what it holds
			// for a hash is what it returns. Say so in a test, so that a
			// change of that trust is a decision.
			if got.Services["shop/a"].Port != 8080 || n != 0 {
				t.Errorf("%s: port %d, %d evaluated", name, got.Services["shop/a"].Port, n)
			}
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: mesh (-want +got):\n%s", name, d)
		}
		if n != 2 {
			t.Errorf("%s: evaluated %d services, want 2", name, n)
		}
		if now, _ := os.ReadFile(file); !bytes.Contains(now, []byte(cacheFingerprint())) {
			t.Errorf("%s: the file was not replaced", name)
		}
	}

	// A cache directory that cannot be written makes no load fail.
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.WriteFile(ro, nil, 0o600); err != nil { // a file, not a directory
		t.Fatal(err)
	}
	if got, _, err := cachedLoad(ro, srcs); err != nil || cmp.Diff(want, got) != "" {
		t.Errorf("unwritable cache: %v", err)
	}
}

// TestCacheForgets: entries unused for cacheDays go, and the file holds at
// most maxCacheEntries, the least recently used going first.
func TestCacheForgets(t *testing.T) {
	mm := &memo{keepDays: cacheDays, services: map[[sha256.Size]byte]memoEntry{}}
	const today = 20000
	old, recent := [sha256.Size]byte{1}, [sha256.Size]byte{2}
	mm.services[old] = memoEntry{Used: today - cacheDays - 1}
	mm.services[recent] = memoEntry{Used: today - cacheDays}
	now := &serviceEntry{key: "a/b", hash: [sha256.Size]byte{3}}
	mm.remember([]*serviceEntry{now}, []Service{{Port: 80}}, []error{nil}, 1, today)
	if _, ok := mm.services[old]; ok {
		t.Error("an entry unused for longer than cacheDays is kept")
	}
	if _, ok := mm.services[recent]; !ok {
		t.Error("an entry used within cacheDays is forgotten")
	}
	if me := mm.services[now.hash]; me.Used != today || me.Service.Port != 80 {
		t.Errorf("the loaded entry is %+v", me)
	}
	if !mm.dirty {
		t.Error("a changed memo is not marked for writing")
	}

	mm = &memo{keepDays: cacheDays, services: map[[sha256.Size]byte]memoEntry{}}
	for i := range maxCacheEntries {
		var h [sha256.Size]byte
		h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
		mm.services[h] = memoEntry{Used: today - 1}
	}
	var oldest [sha256.Size]byte
	oldest[31] = 1
	mm.services[oldest] = memoEntry{Used: today - 2}
	mm.remember([]*serviceEntry{now}, []Service{{}}, []error{nil}, 1, today)
	if len(mm.services) != maxCacheEntries {
		t.Errorf("%d entries, want %d", len(mm.services), maxCacheEntries)
	}
	if _, ok := mm.services[oldest]; ok {
		t.Error("the least recently used entry is kept past the cap")
	}
	if _, ok := mm.services[now.hash]; !ok {
		t.Error("the loaded entry is dropped by the cap")
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("MESHCTL_CACHE", "off")
	if d := CacheDir(); d != "" {
		t.Errorf("MESHCTL_CACHE=off: %q", d)
	}
	t.Setenv("MESHCTL_CACHE", "/somewhere")
	if d := CacheDir(); d != "/somewhere" {
		t.Errorf("MESHCTL_CACHE=/somewhere: %q", d)
	}
	t.Setenv("MESHCTL_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d := CacheDir(); d != "/xdg/meshctl/services" {
		t.Errorf("XDG_CACHE_HOME=/xdg: %q", d)
	}
}

// TestCacheNewPathStartsFromNewest: the same mesh at a new path (a new
// checkout, a diff's base unpacked in a temporary directory) evaluates
// only what differs from the mesh loaded last.
func TestCacheNewPathStartsFromNewest(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	mesh := "services: \"shop/a\": {port: 80}\nservices: \"shop/b\": {port: 81}\n"
	a, b := filepath.Join(work, "a.cue"), filepath.Join(work, "b.cue")
	os.WriteFile(a, []byte(mesh), 0o644)
	os.WriteFile(b, []byte(strings.Replace(mesh, "81", "82", 1)), 0o644)
	l := &Loader{CacheDir: dir}
	if _, err := l.Load(a); err != nil || l.memo.evaluated != 2 {
		t.Fatalf("first load: %d evaluated, %v", l.memo.evaluated, err)
	}
	l = &Loader{CacheDir: dir}
	if _, err := l.Load(b); err != nil || l.memo.evaluated != 1 {
		t.Fatalf("new path: %d evaluated, want 1 (%v)", l.memo.evaluated, err)
	}
	if _, err := os.Stat(filepath.Join(dir, cacheFileName(b))); err != nil {
		t.Errorf("the new path has no file of its own: %v", err)
	}
}
