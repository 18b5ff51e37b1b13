package schema

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// The on-disk memory of validated services.
//
// Evaluating a service entry against #Service is most of what loading a
// large mesh costs, and between two runs of meshctl on a mesh under edit
// almost every entry is the same text. A Loader with a CacheDir keeps, in
// one file per mesh (named after the absolute path of the first mesh the
// Loader loads), every entry of that mesh that validated in the last
// cacheDays days: the hash of its key and text, and the Service it decoded
// to. One file per mesh keeps what a run reads down to that mesh; a path
// seen for the first time starts from the newest file (readCache). An entry found
// there is not evaluated again. Only valid entries are kept, so an invalid
// file is evaluated in full, every time, and its errors are what they
// would be without the cache.
//
// The file is valid only for the schema, the CUE version and the Service
// type it was written with (cacheFingerprint); any other file is ignored
// and replaced. A file that cannot be read, parsed or written is ignored
// too: the cache can make a load faster, never make it fail. It holds the
// mesh's service definitions (routes, ports, splits), nothing secret, and
// is written owner-only, atomically (a rename), so that processes running
// at once each see a whole file.

// cacheDays is how long an entry unused stays in the file.
const cacheDays = 7

// maxCacheEntries bounds the file: the least recently used go first.
const maxCacheEntries = 100_000

// cacheFileName is the file in the cache directory for the mesh at path.
func cacheFileName(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	h := sha256.Sum256([]byte(path))
	return "services-v1-" + hex.EncodeToString(h[:8]) + ".json"
}

// CacheDir is the directory meshctl keeps its memory of validated services
// in: $MESHCTL_CACHE if set, "" (no cache) if that is "off", and otherwise
// meshctl/services/ under the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache).
func CacheDir() string {
	switch v := os.Getenv("MESHCTL_CACHE"); v {
	case "off":
		return ""
	case "":
		d, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(d, "meshctl", "services")
	default:
		return v
	}
}

// cacheFile is the file's form.
type cacheFile struct {
	Fingerprint string               `json:"fingerprint"`
	Entries     map[string]memoEntry `json:"entries"`
}

// readCache fills the memo from the file, when it is there and was written
// for this schema, CUE and Service type. A mesh seen at this path for the
// first time (a new checkout, a base revision unpacked in a temporary
// directory) starts from the most recently written file of another path,
// which is most likely the same mesh; its entries not in this mesh are
// forgotten with time, as any unused entry.
func readCache(file string, mm *memo) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if newest := newestCacheFile(filepath.Dir(file)); newest != "" {
			b, err = os.ReadFile(newest)
			mm.mu.Lock()
			mm.dirty = true // write this path's own file
			mm.mu.Unlock()
		}
	}
	if err != nil {
		return
	}
	var f cacheFile
	if json.Unmarshal(b, &f) != nil || f.Fingerprint != cacheFingerprint() {
		mm.mu.Lock()
		mm.dirty = true // replace it
		mm.mu.Unlock()
		return
	}
	services := make(map[[sha256.Size]byte]memoEntry, len(f.Entries))
	for k, me := range f.Entries {
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(k)); err != nil || n != len(h) {
			continue
		}
		services[h] = me
	}
	mm.mu.Lock()
	mm.services = services
	mm.mu.Unlock()
}

// newestCacheFile is the most recently written cache file in dir, or "".
func newestCacheFile(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "services-v1-*.json"))
	newest, at := "", time.Time{}
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && info.ModTime().After(at) {
			newest, at = f, info.ModTime()
		}
	}
	return newest
}

// writeCache writes the memo to the file, when it changed, and removes
// other meshes' files unused for cacheDays days. It writes entry by entry,
// so that the file's text is never in memory whole.
func writeCache(file string, mm *memo) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if !mm.dirty {
		return
	}
	mm.dirty = false
	dir := filepath.Dir(file)
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(file)+".*")
	if err != nil {
		return
	}
	w := bufio.NewWriterSize(tmp, 64<<10)
	fmt.Fprintf(w, `{"fingerprint":%q,"entries":{`, cacheFingerprint())
	first := true
	for h, me := range mm.services {
		b, err := json.Marshal(me)
		if err != nil {
			continue
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		fmt.Fprintf(w, "%q:", hex.EncodeToString(h[:]))
		w.Write(b)
	}
	w.WriteString("}}\n")
	werr := w.Flush()
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), file) != nil {
		os.Remove(tmp.Name())
		return
	}
	old, _ := filepath.Glob(filepath.Join(dir, "services-v1-*.json*"))
	for _, o := range old {
		if info, err := os.Stat(o); err == nil && time.Since(info.ModTime()) > cacheDays*24*time.Hour {
			os.Remove(o)
		}
	}
}

// cacheFingerprint names what a cached Service depends on besides the
// entry's text: the schema, the CUE evaluator's version and the Go type the
// entry is decoded into.
var cacheFingerprint = sync.OnceValue(func() string {
	h := sha256.New()
	fmt.Fprintf(h, "meshctl services cache\n%s\n", CUE)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "cuelang.org/go" {
				fmt.Fprintf(h, "cue %s %s\n", d.Version, d.Sum)
				if d.Replace != nil {
					fmt.Fprintf(h, "replaced %s %s %s\n", d.Replace.Path, d.Replace.Version, d.Replace.Sum)
				}
			}
		}
	}
	h.Write([]byte(typeSignature(reflect.TypeFor[Service](), map[reflect.Type]bool{})))
	return hex.EncodeToString(h.Sum(nil))
})

// typeSignature spells out t: its kind, and for structs every field's name,
// type and tag, so that a change to the Service type changes the
// fingerprint.
func typeSignature(t reflect.Type, seen map[reflect.Type]bool) string {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return t.Kind().String() + "[" + typeSignature(t.Elem(), seen) + "]"
	case reflect.Map:
		return "map[" + typeSignature(t.Key(), seen) + "]" + typeSignature(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] {
			return t.String()
		}
		seen[t] = true
		var b strings.Builder
		b.WriteString(t.String() + "{")
		for f := range t.Fields() {
			fmt.Fprintf(&b, "%s %s %q;", f.Name, typeSignature(f.Type, seen), f.Tag)
		}
		b.WriteString("}")
		return b.String()
	}
	return t.String()
}
