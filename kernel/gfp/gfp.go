// Package gfp names the bits of a gfp_t allocation mask as the running
// kernel prints them ("GFP_HIGHUSER_MOVABLE|__GFP_COMP", the %pGg of the
// OOM killer's "invoked oom-killer: gfp_mask=0x..." line).
//
// The names and their values come from the kernel itself, not from a table
// kept here: the bits move between versions (___GFP_ATOMIC went in 6.4,
// others came), and before 6.10 they are macros that BTF does not carry.
// Every kernel prints the gfp flags of its kmem:mm_page_alloc trace event
// with the same table the OOM killer uses (gfpflag_names, from
// include/trace/events/mmflags.h), composites first, and tracefs shows that
// table in the event's print format, each entry as a C constant expression
// with its name. This package reads and evaluates it.
package gfp

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Flag is one entry of the kernel's table: a name and the bits it stands for.
type Flag struct {
	Name string
	Mask uint32
}

// Table is the kernel's gfp flag names, in its print order.
type Table []Flag

// formatPaths are where tracefs shows the event's format: its own mount
// point, or under debugfs on older setups.
var formatPaths = []string{
	"/sys/kernel/tracing/events/kmem/mm_page_alloc/format",
	"/sys/kernel/debug/tracing/events/kmem/mm_page_alloc/format",
}

// Load reads the running kernel's table from tracefs.
func Load() (Table, error) {
	var errs []error
	for _, p := range formatPaths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t, err := ParseFormat(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("gfp flag names: no kmem:mm_page_alloc format in tracefs (is it mounted?): %w", errors.Join(errs...))
}

// entryRE is one {value, "name"} pair of __print_flags: the value has
// parentheses but neither braces nor quotes.
var entryRE = regexp.MustCompile(`\{([^{}"]+),\s*"([^"]+)"\}`)

// ParseFormat reads the gfp table from an event's format file: the entries
// of the __print_flags call on its gfp_flags field.
func ParseFormat(format string) (Table, error) {
	i := strings.Index(format, "__print_flags(REC->gfp_flags")
	if i < 0 {
		return nil, errors.New("the format prints no gfp_flags with __print_flags")
	}
	var t Table
	for _, m := range entryRE.FindAllStringSubmatch(format[i:], -1) {
		v, err := eval(m[1])
		if err != nil {
			return nil, fmt.Errorf("gfp flag %s: %w", m[2], err)
		}
		// gfp_t is 32 bits wide: a complement taken in a wider type
		// leaves bits above that no flag has.
		t = append(t, Flag{Name: m[2], Mask: uint32(v)})
	}
	if len(t) == 0 {
		return nil, errors.New("the format's __print_flags has no entries")
	}
	return t, nil
}

// Names names mask as the kernel's __print_flags does: each entry, in
// order, whose bits are all set and not yet named, then what is left as
// one hex number. Nil for a mask of 0 (the kernel prints nothing).
func (t Table) Names(mask uint32) []string {
	var names []string
	for _, f := range t {
		if f.Mask != 0 && mask&f.Mask == f.Mask {
			names = append(names, f.Name)
			mask &^= f.Mask
		}
	}
	if mask != 0 {
		names = append(names, fmt.Sprintf("%#x", mask))
	}
	return names
}

// Mask is the bits of the entry named name, and whether there is one.
func (t Table) Mask(name string) (uint32, bool) {
	for _, f := range t {
		if f.Name == name {
			return f.Mask, true
		}
	}
	return 0, false
}
