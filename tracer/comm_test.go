package tracer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

func TestEscapeComm(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
	}{
		{"python3\x00\x00\x00", "python3"},
		{"exactly15bytes!", "exactly15bytes!"},
		{"kworker/0:1", "kworker/0:1"},
		{"héllo", "héllo"},
		{"a\\b", `a\\b`},
		{"\xff\xfe", `\xff\xfe`},
		{"tab\there", `tab\x09here`},
		{"nl\n", `nl\x0a`},
		{"\x7f", `\x7f`},
		{"\u0085x", `\xc2\x85x`}, // valid UTF-8, not printable
		{"\xe2\x82", `\xe2\x82`}, // truncated rune (comm cut at 15 bytes)
		{"a\x00garbage", "a"},    // stale bytes after the terminator
		{"", ""},
	} {
		if got := EscapeComm([]byte(tc.raw)); got != tc.want {
			t.Errorf("EscapeComm(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// unescapeComm inverts EscapeComm; it exists to prove nothing is lost.
func unescapeComm(s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if s[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		n, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
		out = append(out, byte(n))
		i += 3
	}
	return out
}

func FuzzEscapeComm(f *testing.F) {
	f.Add([]byte("python3"))
	f.Add([]byte("\xff\\x41\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := EscapeComm(raw)
		if !utf8.ValidString(got) {
			t.Fatalf("EscapeComm(%q) = %q: not UTF-8", raw, got)
		}
		want := raw
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			want = raw[:i]
		}
		if back := unescapeComm(got); !bytes.Equal(back, want) {
			t.Fatalf("EscapeComm(%q) = %q, which reads back as %q", raw, got, back)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatal(err)
		}
	})
}
