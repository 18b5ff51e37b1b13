package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// pathSource reads a file or a directory of .cue files: a ConfigMap volume,
// whose kubelet swaps a ..data symlink, or git-sync's --link, a symlink to
// a worktree named after its commit.
type pathSource struct {
	path, workDir string

	mu   sync.Mutex
	last Snapshot
	sum  string
}

func (s *pathSource) String() string { return "path " + s.path }

type cueFile struct {
	name string
	data []byte
}

// Fetch reads the .cue content, and copies it into a snapshot directory
// named after its hash when it changed.
func (s *pathSource) Fetch(ctx context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		files    []cueFile
		isDir    bool
		realPath string
		err      error
	)
	// A volume being swapped can remove a directory between resolving a
	// link and reading through it; the next try sees the new one.
	for range 3 {
		if err = ctx.Err(); err != nil {
			return Snapshot{}, err
		}
		files, isDir, realPath, err = readCUE(s.path)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("path %s does not exist: check the volume that holds mesh.cue (a ConfigMap volume, or git-sync's --root and --link)", s.path)
	}
	if err != nil {
		return Snapshot{}, err
	}
	sum := contentHash(files)
	rev := "sha256:" + sum
	if commit := gitSyncCommit(realPath); commit != "" {
		rev = "git:" + commit
	}
	if sum == s.sum && exists(s.last.Path) {
		s.last.Revision = rev
		return s.last, nil
	}
	dir := filepath.Join(s.workDir, sum)
	if err := writeSnapshot(dir, files); err != nil {
		return Snapshot{}, fmt.Errorf("path %s: keeping a snapshot in %s: %w", s.path, s.workDir, err)
	}
	snap := Snapshot{Path: dir, Revision: rev, Root: dir, Origin: s.path}
	if !isDir {
		snap.Path = filepath.Join(dir, files[0].name)
		snap.Origin = filepath.Dir(s.path)
	}
	s.last, s.sum = snap, sum
	clean(s.workDir, sum)
	return snap, nil
}

// readCUE reads path, a .cue file or a directory's .cue files (not its
// subdirectories', as schema.Load), through any symlinks, sorted by name. It
// also returns the path with its symlinks resolved.
func readCUE(path string) (files []cueFile, isDir bool, real string, err error) {
	real, err = filepath.EvalSymlinks(path)
	if err != nil {
		return nil, false, "", fmt.Errorf("path %s: %w", path, err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, false, "", fmt.Errorf("path %s: %w", path, err)
	}
	if !info.IsDir() {
		data, err := os.ReadFile(real)
		if err != nil {
			return nil, false, "", fmt.Errorf("path %s: %w", path, err)
		}
		return []cueFile{{name: filepath.Base(path), data: data}}, false, real, nil
	}
	// The resolved directory is read, so that a directory link swapped
	// meanwhile (git-sync's) cannot mix two revisions.
	names, err := filepath.Glob(filepath.Join(real, "*.cue"))
	if err != nil {
		return nil, true, "", err
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, true, "", fmt.Errorf("path %s: %w", path, err)
		}
		files = append(files, cueFile{name: filepath.Base(n), data: data})
	}
	if len(files) == 0 {
		return nil, true, "", fmt.Errorf("path %s has no .cue files: check the volume that holds mesh.cue", path)
	}
	return files, true, real, nil
}

// contentHash is the hex sha256 of the files' names and bytes, in order.
func contentHash(files []cueFile) string {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f.name + "\x00" + strconv.Itoa(len(f.data)) + "\x00"))
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// gitSyncCommit returns the commit a resolved path lies in when it is a
// git-sync worktree: git-sync v4 checks out ROOT/.worktrees/<commit>, v3
// ROOT/<commit>, and points its --link there. A 64-hex name (a SHA-256
// repository's commit) counts only under .worktrees, since meshctl's own
// snapshots are named so. It returns "" otherwise.
func gitSyncCommit(real string) string {
	parts := strings.Split(filepath.ToSlash(real), "/")
	for i := len(parts) - 1; i > 0; i-- {
		p := parts[i]
		if isHex(p) && (len(p) == 40 || len(p) == 64 && parts[i-1] == ".worktrees") {
			return p
		}
	}
	return ""
}

// writeSnapshot writes files into dir, unless it exists: dir appears only
// once complete.
func writeSnapshot(dir string, files []cueFile) error {
	if exists(dir) {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), tmpPrefix+"snapshot-")
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.name), f.data, 0o644); err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return nil
}
