package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// entry is one tarball entry: a file with body, a directory (name ends in
// "/") or a symlink to link.
type entry struct {
	name, body, link string
}

func tarball(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case e.name[len(e.name)-1] == '/':
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree reads every file under dir, following symlinks, as name → content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(r)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUnpack(t *testing.T) {
	small := limits{Bytes: 16, Entries: 4}
	for _, tc := range []struct {
		name    string
		data    []byte
		lim     limits
		want    map[string]string
		wantErr string
	}{{
		name: "files, directories and a symlink inside",
		data: tarball(t,
			entry{name: "./"},
			entry{name: "./clusters/"},
			entry{name: "./clusters/prod/mesh.cue", body: "prod"},
			entry{name: "mesh.cue", link: "clusters/prod/mesh.cue"},
			entry{name: "README.md", body: "hi"}),
		want: map[string]string{"clusters/prod/mesh.cue": "prod", "mesh.cue": "prod", "README.md": "hi"},
	}, {
		name: "a symlink that leads nowhere is dropped",
		data: tarball(t, entry{name: "a.cue", body: "a"}, entry{name: "gone.cue", link: "missing.cue"}),
		want: map[string]string{"a.cue": "a"},
	}, {
		name:    "absolute path",
		data:    tarball(t, entry{name: "/etc/evil", body: "x"}),
		wantErr: `entry "/etc/evil" is an absolute path`,
	}, {
		name:    "parent directory",
		data:    tarball(t, entry{name: "../evil", body: "x"}),
		wantErr: `entry "../evil" leaves the directory (..)`,
	}, {
		name:    "parent directory inside a path",
		data:    tarball(t, entry{name: "a/../../evil", body: "x"}),
		wantErr: `entry "a/../../evil" leaves the directory (..)`,
	}, {
		name:    "symlink to an absolute path",
		data:    tarball(t, entry{name: "mesh.cue", link: "/etc/passwd"}),
		wantErr: `entry "mesh.cue" is a symlink to an absolute path`,
	}, {
		name:    "symlink up and out",
		data:    tarball(t, entry{name: "a/mesh.cue", link: "../../secret"}),
		wantErr: `entry "a/mesh.cue" is a symlink that leaves the directory`,
	}, {
		name:    "symlink out through another symlink",
		data:    tarball(t, entry{name: "here", link: "."}, entry{name: "up", link: "here/.."}),
		wantErr: `entry "up" is a symlink that leaves the directory`,
	}, {
		name:    "symlink made through another symlink",
		data:    tarball(t, entry{name: "d/"}, entry{name: "a", link: "d"}, entry{name: "a/b", link: "x"}),
		wantErr: `entry "a/b" is a symlink inside another symlink`,
	}, {
		name:    "more bytes than the limit",
		data:    tarball(t, entry{name: "a", body: "0123456789"}, entry{name: "b", body: "0123456789"}),
		lim:     small,
		wantErr: "more than 16 bytes unpacked: too large",
	}, {
		name:    "more entries than the limit",
		data:    tarball(t, entry{name: "a/"}, entry{name: "b/"}, entry{name: "c/"}, entry{name: "d/"}, entry{name: "e/"}),
		lim:     small,
		wantErr: "more than 4 entries: too large",
	}, {
		name:    "not gzip",
		data:    []byte("mesh: {name: \"not a tarball\"}"),
		wantErr: "not a gzip tarball: gzip: invalid header",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			if lim == (limits{}) {
				lim = defaultLimits
			}
			// The tarball unpacks one level down, so that what escapes
			// lands where the test can see it.
			top := t.TempDir()
			dir := filepath.Join(top, "out")
			err := unpack(bytes.NewReader(tc.data), dir, lim)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("error: got %q, want %q", got, tc.wantErr)
			}
			if err != nil {
				if entries, _ := os.ReadDir(top); len(entries) > 1 {
					t.Errorf("something was written beside the directory: %v", entries)
				}
				return
			}
			if diff := cmp.Diff(tc.want, tree(t, dir)); diff != "" {
				t.Errorf("unpacked files (-want +got):\n%s", diff)
			}
		})
	}
}
