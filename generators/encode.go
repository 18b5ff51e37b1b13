package generators

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Encode writes objects as a multi-document YAML stream ("yaml") or as a
// JSON v1 List ("json"), the forms `kubectl apply -f -` reads.
func Encode(w io.Writer, objs []Object, format string) error {
	switch format {
	case "json":
		items := make([]any, len(objs))
		for i, o := range objs {
			items[i] = o.Object.Object
		}
		b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		bw := bufio.NewWriterSize(w, 64<<10)
		for _, o := range objs {
			b, err := marshalYAML(o.Object.Object)
			if err != nil {
				return fmt.Errorf("%s: %w", o.ID(), err)
			}
			bw.WriteString("---\n")
			bw.Write(b)
		}
		return bw.Flush()
	}
	return fmt.Errorf("unknown output format %q: use yaml or json", format)
}
