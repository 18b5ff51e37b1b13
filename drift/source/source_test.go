package source

import (
	"testing"

	"k8s.io/client-go/rest"
)

func TestParse(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, tc := range []struct {
		name, spec, path, inside string
		cfg                      *rest.Config
		want, wantErr            string
	}{
		{name: "default path", want: "path mesh.cue"},
		{name: "PATH argument", spec: "path", path: "/etc/mesh/mesh.cue", want: "path /etc/mesh/mesh.cue"},
		{name: "GitRepository", spec: "flux:GitRepository/flux-system/mesh", cfg: cfg, want: "flux GitRepository flux-system/mesh"},
		{name: "OCIRepository in any case", spec: "flux:ocirepository/apps/mesh", inside: "./mesh/", cfg: cfg, want: "flux OCIRepository apps/mesh"},
		{
			name: "unknown scheme", spec: "git:https://example.com/mesh",
			wantErr: `--source "git:https://example.com/mesh": want path, flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`,
		},
		{
			name: "no namespace", spec: "flux:GitRepository/mesh", cfg: cfg,
			wantErr: `--source "flux:GitRepository/mesh": want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`,
		},
		{
			name: "another Flux kind", spec: "flux:HelmChart/flux-system/mesh", cfg: cfg,
			wantErr: `--source "flux:HelmChart/flux-system/mesh": want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`,
		},
		{
			name: "source path outside the artifact", spec: "flux:GitRepository/flux-system/mesh", inside: "../mesh.cue", cfg: cfg,
			wantErr: `--source-path "../mesh.cue": want a path inside the artifact, such as clusters/prod/mesh.cue`,
		},
		{
			name: "absolute source path", spec: "flux:GitRepository/flux-system/mesh", inside: "/mesh.cue", cfg: cfg,
			wantErr: `--source-path "/mesh.cue": want a path inside the artifact, such as clusters/prod/mesh.cue`,
		},
		{
			name: "no cluster", spec: "flux:GitRepository/flux-system/mesh",
			wantErr: `"flux:GitRepository/flux-system/mesh" needs a cluster connection`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Parse(tc.spec, tc.path, tc.inside, t.TempDir(), tc.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("error: got %q, want %q", got, tc.wantErr)
			}
			if err == nil && src.String() != tc.want {
				t.Errorf("source: got %q, want %q", src.String(), tc.want)
			}
		})
	}
}
