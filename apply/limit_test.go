package apply

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		want       Limit
		wantString string
		wantErr    string
	}{
		{name: "count", in: "10", want: Limit{Count: 10, IsCount: true}, wantString: "10"},
		{name: "zero count", in: "0", want: Limit{IsCount: true}, wantString: "0"},
		{name: "percentage", in: "25%", want: Limit{Percent: 25}, wantString: "25%"},
		{name: "zero percent is a zero count", in: "0%", want: Limit{IsCount: true}, wantString: "0"},
		{name: "all", in: "100%", want: Limit{Percent: 100}, wantString: "100%"},
		{name: "negative count", in: "-1", wantErr: `invalid limit "-1": want a count like 10 or a percentage like 50%`},
		{name: "negative percentage", in: "-5%", wantErr: `invalid percentage "-5%": want 0%..100%`},
		{name: "over 100%", in: "101%", wantErr: `invalid percentage "101%": want 0%..100%`},
		{name: "fraction", in: "2.5%", wantErr: `invalid percentage "2.5%": want 0%..100%`},
		{name: "bare percent sign", in: "%", wantErr: `invalid percentage "%": want 0%..100%`},
		{name: "garbage", in: "many", wantErr: `invalid limit "many": want a count like 10 or a percentage like 50%`},
		{name: "empty", in: "", wantErr: `invalid limit "": want a count like 10 or a percentage like 50%`},
		{name: "space", in: " 10", wantErr: `invalid limit " 10": want a count like 10 or a percentage like 50%`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLimit(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseLimit(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLimit(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseLimit(%q) (-want +got):\n%s", tc.in, diff)
			}
			if s := got.String(); s != tc.wantString {
				t.Errorf("String() = %q, want %q", s, tc.wantString)
			}
		})
	}
}

func TestLimitDefaultIsHalf(t *testing.T) {
	if s := (Limit{}).String(); s != "50%" {
		t.Errorf("zero Limit String() = %q, want 50%%", s)
	}
}

func TestLimitAllows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		limit    Limit
		n, total int
		want     bool
	}{
		{name: "default: half", limit: Limit{}, n: 5, total: 10, want: true},
		{name: "default: over half", limit: Limit{}, n: 6, total: 10, want: false},
		{name: "default: 1 of 1", limit: Limit{}, n: 1, total: 1, want: false},
		{name: "count: at the limit", limit: Limit{Count: 3, IsCount: true}, n: 3, total: 100, want: true},
		{name: "count: over", limit: Limit{Count: 3, IsCount: true}, n: 4, total: 4, want: false},
		{name: "zero count: nothing", limit: Limit{IsCount: true}, n: 0, total: 10, want: true},
		{name: "zero count: one", limit: Limit{IsCount: true}, n: 1, total: 10, want: false},
		{name: "100%: everything", limit: Limit{Percent: 100}, n: 10, total: 10, want: true},
		{name: "10%: one of ten", limit: Limit{Percent: 10}, n: 1, total: 10, want: true},
		{name: "10%: two of ten", limit: Limit{Percent: 10}, n: 2, total: 10, want: false},
		{name: "10%: one of nine", limit: Limit{Percent: 10}, n: 1, total: 9, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.limit.allows(tc.n, tc.total); got != tc.want {
				t.Errorf("%s.allows(%d, %d) = %v, want %v", tc.limit, tc.n, tc.total, got, tc.want)
			}
		})
	}
}
