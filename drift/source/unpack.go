package source

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// limits bound what one artifact may hold.
type limits struct {
	// Bytes bounds the download and the unpacked files, each.
	Bytes int64
	// Entries bounds the tarball's entries.
	Entries int
}

// defaultLimits are generous for a repository that holds mesh.cue; Flux's
// spec.ignore keeps an artifact small.
var defaultLimits = limits{Bytes: 64 << 20, Entries: 100_000}

// errTooLarge is returned when an artifact exceeds its limits.
var errTooLarge = errors.New("too large")

// unsafeEntryError is an entry that would write, or point, outside the
// directory.
type unsafeEntryError struct {
	name, why string
}

func (e *unsafeEntryError) Error() string { return fmt.Sprintf("entry %q %s", e.name, e.why) }

// unpack extracts a tar.gz into dir, which it creates. Regular files and
// directories are written; symlinks are made last, so that no file is
// written through one, and only when they stay inside dir; other entries
// (hard links, devices) are skipped. On error dir may hold a part.
func unpack(r io.Reader, dir string, lim limits) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip tarball: %w", err)
	}
	defer gz.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	var (
		total   int64
		entries int
		links   [][2]string
	)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tarball: %w", err)
		}
		if entries++; entries > lim.Entries {
			return fmt.Errorf("more than %d entries: %w", lim.Entries, errTooLarge)
		}
		name, err := entryName(hdr.Name)
		if err != nil || name == "" {
			if err != nil {
				return err
			}
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if total += hdr.Size; hdr.Size < 0 || total > lim.Bytes {
				return fmt.Errorf("more than %s unpacked: %w", size(lim.Bytes), errTooLarge)
			}
			if err := writeFile(target, tr, hdr.Size); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return &unsafeEntryError{hdr.Name, "is a symlink to an absolute path"}
			}
			if to := path.Join(path.Dir(name), hdr.Linkname); !filepath.IsLocal(filepath.FromSlash(to)) {
				return &unsafeEntryError{hdr.Name, "is a symlink that leaves the directory"}
			}
			links = append(links, [2]string{target, hdr.Linkname})
		}
	}
	return makeLinks(dir, links)
}

// entryName cleans a tarball entry's name; "" is the root itself.
func entryName(raw string) (string, error) {
	if path.IsAbs(raw) || strings.HasPrefix(raw, `\`) || filepath.VolumeName(raw) != "" {
		return "", &unsafeEntryError{raw, "is an absolute path"}
	}
	for _, el := range strings.Split(raw, "/") {
		if el == ".." {
			return "", &unsafeEntryError{raw, "leaves the directory (..)"}
		}
	}
	name := path.Clean(raw)
	if name == "." {
		return "", nil
	}
	return name, nil
}

func writeFile(target string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// makeLinks creates the symlinks, then resolves each: one that reaches
// outside dir through another (a link to "." followed by "..") is an error,
// and one that leads nowhere is removed, so that nothing made later
// outside dir can appear through it.
func makeLinks(dir string, links [][2]string) error {
	for _, l := range links {
		if err := noLinkAbove(dir, l[0]); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(l[0]), 0o755); err != nil {
			return err
		}
		_ = os.RemoveAll(l[0])
		if err := os.Symlink(l[1], l[0]); err != nil {
			return err
		}
	}
	if len(links) == 0 {
		return nil
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	for _, l := range links {
		real, err := filepath.EvalSymlinks(l[0])
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Remove(l[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case err != nil:
			return &unsafeEntryError{rel(dir, l[0]), "is a symlink that cannot be resolved (" + err.Error() + ")"}
		case !within(root, real):
			return &unsafeEntryError{rel(dir, l[0]), "is a symlink that leaves the directory"}
		}
	}
	return nil
}

// noLinkAbove fails when a directory between dir and p is a symlink: a
// link made through another could land outside dir.
func noLinkAbove(dir, p string) error {
	r := rel(dir, p)
	at := dir
	parts := strings.Split(r, "/")
	for _, el := range parts[:len(parts)-1] {
		at = filepath.Join(at, el)
		info, err := os.Lstat(at)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return &unsafeEntryError{r, "is a symlink inside another symlink"}
		}
	}
	return nil
}

func rel(dir, p string) string {
	r, err := filepath.Rel(dir, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

// size prints a limit for people.
func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
