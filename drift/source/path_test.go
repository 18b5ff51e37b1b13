package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// publisher lays out a volume the way a delivery tool does. Each publish
// writes one revision of the files atomically and returns the path to give
// meshctl and the revision it should report.
type publisher func(t *testing.T, root string, n int, files map[string]string) (path, rev string)

// configMapVolume is what kubelet writes for a ConfigMap volume: the files
// in a timestamped directory, a ..data symlink swapped to it, and one
// symlink per key through ..data.
func configMapVolume(dir bool) publisher {
	return func(t *testing.T, root string, n int, files map[string]string) (string, string) {
		ts := fmt.Sprintf("..2026_11_25_10_00_%02d.%d", n, 1000+n)
		writeFiles(t, filepath.Join(root, ts), files)
		swapLink(t, ts, filepath.Join(root, "..data"))
		for name := range files {
			if _, err := os.Lstat(filepath.Join(root, name)); err != nil {
				symlink(t, filepath.Join("..data", name), filepath.Join(root, name))
			}
		}
		if dir {
			return root, "sha256:" + hashOf(files)
		}
		return filepath.Join(root, "mesh.cue"), "sha256:" + hashOf(map[string]string{"mesh.cue": files["mesh.cue"]})
	}
}

// gitSync is what git-sync v4 writes with --root=ROOT --link=mesh: a
// worktree per commit under .worktrees, and the link swapped to it.
func gitSync(dir bool) publisher {
	return func(t *testing.T, root string, n int, files map[string]string) (string, string) {
		commit := strings.Repeat(fmt.Sprintf("%x", n%16), 40)
		writeFiles(t, filepath.Join(root, ".worktrees", commit), files)
		swapLink(t, filepath.Join(".worktrees", commit), filepath.Join(root, "mesh"))
		if dir {
			return filepath.Join(root, "mesh"), "git:" + commit
		}
		return filepath.Join(root, "mesh", "mesh.cue"), "git:" + commit
	}
}

// plainFile is a file rewritten in place.
func plainFile(t *testing.T, root string, _ int, files map[string]string) (string, string) {
	writeFiles(t, root, map[string]string{"mesh.cue": files["mesh.cue"]})
	return filepath.Join(root, "mesh.cue"), "sha256:" + hashOf(map[string]string{"mesh.cue": files["mesh.cue"]})
}

func TestPathSource(t *testing.T) {
	v1 := map[string]string{"mesh.cue": "mesh: name: \"one\"\n", "extra.cue": "x: 1\n"}
	v2 := map[string]string{"mesh.cue": "mesh: name: \"two\"\n", "extra.cue": "x: 1\n"}
	for _, tc := range []struct {
		name    string
		publish publisher
		dir     bool
	}{
		{name: "plain file", publish: plainFile},
		{name: "ConfigMap volume, file", publish: configMapVolume(false)},
		{name: "ConfigMap volume, directory", publish: configMapVolume(true), dir: true},
		{name: "git-sync link, file", publish: gitSync(false)},
		{name: "git-sync link, directory", publish: gitSync(true), dir: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root, work := t.TempDir(), t.TempDir()
			path, rev1 := tc.publish(t, root, 1, v1)
			src, err := Parse("", path, "ignored.cue", work, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := fetch(t, ctx, src, rev1, v1, tc.dir)

			again := fetch(t, ctx, src, rev1, v1, tc.dir)
			if again.Path != first.Path {
				t.Errorf("unchanged content moved from %s to %s", first.Path, again.Path)
			}

			_, rev2 := tc.publish(t, root, 2, v2)
			if rev2 == rev1 {
				t.Fatalf("the test's revisions should differ: %s", rev1)
			}
			// Until the next Fetch, a render reads the revision it was given.
			checkContent(t, first, v1, tc.dir)
			second := fetch(t, ctx, src, rev2, v2, tc.dir)
			if exists(first.Path) {
				t.Errorf("the older snapshot %s is still there", first.Path)
			}

			// The same content published again (a ConfigMap update that
			// changes nothing, a commit that leaves mesh.cue alone) keeps
			// the snapshot; git-sync's revision follows the commit.
			_, rev3 := tc.publish(t, root, 3, v2)
			third := fetch(t, ctx, src, rev3, v2, tc.dir)
			if third.Path != second.Path {
				t.Errorf("same content moved from %s to %s", second.Path, third.Path)
			}
		})
	}
}

func TestPathSourceErrors(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, filepath.Join(root, "empty"), map[string]string{"README.md": "no cue here"})
	for _, tc := range []struct {
		name, path, want string
	}{{
		name: "missing",
		path: filepath.Join(root, "mesh.cue"),
		want: "path ROOT/mesh.cue does not exist: check the volume that holds mesh.cue (a ConfigMap volume, or git-sync's --root and --link)",
	}, {
		name: "directory without .cue files",
		path: filepath.Join(root, "empty"),
		want: "path ROOT/empty has no .cue files: check the volume that holds mesh.cue",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Parse("path", tc.path, "", t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Fetch(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.ReplaceAll(err.Error(), root, "ROOT"); got != tc.want {
				t.Errorf("error:\ngot  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func fetch(t *testing.T, ctx context.Context, src Source, wantRev string, want map[string]string, dir bool) Snapshot {
	t.Helper()
	snap, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != wantRev {
		t.Errorf("revision: got %s, want %s", snap.Revision, wantRev)
	}
	checkContent(t, snap, want, dir)
	return snap
}

// checkContent checks that the snapshot holds want: every .cue file of a
// directory, or mesh.cue alone.
func checkContent(t *testing.T, snap Snapshot, want map[string]string, dir bool) {
	t.Helper()
	if !dir {
		want = map[string]string{"mesh.cue": want["mesh.cue"]}
		if filepath.Base(snap.Path) != "mesh.cue" {
			t.Errorf("snapshot path %s: want a mesh.cue file", snap.Path)
		}
	}
	for name, body := range want {
		p := snap.Path
		if dir {
			p = filepath.Join(p, name)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if string(data) != body {
			t.Errorf("%s: got %q, want %q", name, data, body)
		}
	}
}

func hashOf(files map[string]string) string {
	var fs []cueFile
	for _, n := range []string{"extra.cue", "mesh.cue"} {
		if body, ok := files[n]; ok {
			fs = append(fs, cueFile{name: n, data: []byte(body)})
		}
	}
	return contentHash(fs)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// swapLink points link at target atomically, as kubelet and git-sync do:
// a new link renamed over the old.
func swapLink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".tmp"
	symlink(t, target, tmp)
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}
