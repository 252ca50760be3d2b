package gfp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// eval computes one entry's value: a C constant expression as the
// preprocessor left it in the format, made of integer literals (0x40u,
// 1UL), casts ("( gfp_t)", "(unsigned long)"), parentheses and the
// operators ~ << >> & ^ |, which is all the kernel's gfp table uses.
func eval(expr string) (uint64, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return 0, err
	}
	p := parser{toks: toks}
	v, err := p.or()
	if err != nil {
		return 0, err
	}
	if p.pos != len(p.toks) {
		return 0, fmt.Errorf("unexpected %q in %q", p.toks[p.pos], expr)
	}
	return v, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case strings.HasPrefix(s[i:], "<<"), strings.HasPrefix(s[i:], ">>"):
			toks = append(toks, s[i:i+2])
			i += 2
		case strings.ContainsRune("()~&|^", c):
			toks = append(toks, s[i:i+1])
			i++
		case unicode.IsDigit(c), unicode.IsLetter(c), c == '_':
			j := i
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || unicode.IsLetter(rune(s[j])) || s[j] == '_') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q in %q", c, s)
		}
	}
	return toks, nil
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

// binary parses operands joined by op, left to right, with next binding
// tighter: C's precedence, | below ^ below & below the shifts.
func (p *parser) binary(next func() (uint64, error), ops ...string) (uint64, error) {
	v, err := next()
	for err == nil {
		op := p.peek()
		if !contains(ops, op) {
			break
		}
		p.pos++
		var r uint64
		if r, err = next(); err != nil {
			break
		}
		switch op {
		case "|":
			v |= r
		case "^":
			v ^= r
		case "&":
			v &= r
		case "<<":
			v <<= r
		case ">>":
			v >>= r
		}
	}
	return v, err
}

func contains(ops []string, op string) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func (p *parser) or() (uint64, error)  { return p.binary(p.xor, "|") }
func (p *parser) xor() (uint64, error) { return p.binary(p.and, "^") }
func (p *parser) and() (uint64, error) { return p.binary(p.shift, "&") }
func (p *parser) shift() (uint64, error) {
	return p.binary(p.unary, "<<", ">>")
}

func (p *parser) unary() (uint64, error) {
	switch p.peek() {
	case "~":
		p.pos++
		v, err := p.unary()
		return ^v, err
	case "(":
		if p.isCast() {
			return p.unary()
		}
		p.pos++
		v, err := p.or()
		if err != nil {
			return 0, err
		}
		if p.peek() != ")" {
			return 0, errors.New("missing )")
		}
		p.pos++
		return v, nil
	}
	return p.literal()
}

// isCast consumes a cast, "(" type names ")", and reports whether there
// was one. The value keeps its 64 bits: the caller narrows the result.
func (p *parser) isCast() bool {
	j := p.pos + 1
	for j < len(p.toks) && isTypeWord(p.toks[j]) {
		j++
	}
	if j == p.pos+1 || j >= len(p.toks) || p.toks[j] != ")" {
		return false
	}
	p.pos = j + 1
	return true
}

func isTypeWord(t string) bool {
	return t != "" && (unicode.IsLetter(rune(t[0])) || t[0] == '_')
}

func (p *parser) literal() (uint64, error) {
	t := p.peek()
	if t == "" {
		return 0, errors.New("expression ends early")
	}
	num := strings.TrimRight(t, "uUlL")
	v, err := strconv.ParseUint(num, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", t)
	}
	p.pos++
	return v, nil
}
