package tracer

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EscapeComm turns a kernel comm (up to 16 bytes, NUL-terminated, any bytes a
// process chose with prctl(PR_SET_NAME)) into a string that is valid UTF-8 and
// loses nothing: printable UTF-8 stays as it is, a backslash becomes `\\`, and
// every other byte becomes `\xNN`. The mapping is reversible.
func EscapeComm(raw []byte) string {
	if i := indexNUL(raw); i >= 0 {
		raw = raw[:i]
	}
	var b strings.Builder
	b.Grow(len(raw))
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == utf8.RuneError && size <= 1, !unicode.IsPrint(r):
			for _, c := range raw[:size] {
				b.WriteString(`\x`)
				if c < 0x10 {
					b.WriteByte('0')
				}
				b.WriteString(strconv.FormatUint(uint64(c), 16))
			}
		default:
			b.Write(raw[:size])
		}
		raw = raw[size:]
	}
	return b.String()
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}
