package source

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// tmpPrefix names what is being written in a work directory: a snapshot
// becomes visible under its final name only when complete.
const tmpPrefix = ".meshctl-"

// isSnapshotName reports whether name is a snapshot directory's (the hex of
// a sha256, sha384 or sha512 digest), the only entries clean removes
// besides its own temporary ones.
func isSnapshotName(name string) bool {
	switch len(name) {
	case 64, 96, 128:
	default:
		return false
	}
	return isHex(name)
}

func isHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return s != ""
}

// clean removes the snapshots and leftovers in workDir other than keep.
func clean(workDir string, keep ...string) {
	entries, err := os.ReadDir(workDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if !slices.Contains(keep, n) && (isSnapshotName(n) || strings.HasPrefix(n, tmpPrefix)) {
			_ = os.RemoveAll(filepath.Join(workDir, n))
		}
	}
}

// exists reports whether path can be stat'ed.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// within reports whether path is root or under it; both are cleaned,
// symlink-free paths.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && filepath.IsLocal(rel) || rel == "."
}

// resolvesWithin reports whether path, with its symlinks resolved, is
// under root's resolved path.
func resolvesWithin(root, path string) bool {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return false
	}
	p, err := filepath.EvalSymlinks(path)
	return err == nil && within(r, p)
}
