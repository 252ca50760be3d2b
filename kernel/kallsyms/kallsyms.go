// Package kallsyms names kernel code addresses by /proc/kallsyms.
//
// The file is large (some 150,000 symbols, 5-10 MB of text, 50 ms of the
// kernel's time to read) and the daemon needs few names: the frames of OOM
// paths, which repeat. The daemon builds an Index of it once, off the
// kill's path, in a file; until then each address not yet named costs one
// pass over the file (shared by all the addresses of a stack). Names found
// are kept.
package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
)

// ErrHidden: /proc/kallsyms shows every address as 0 to this process
// (kernel.kptr_restrict, or no CAP_SYSLOG).
var ErrHidden = errors.New("kernel addresses hidden in /proc/kallsyms (kernel.kptr_restrict; oomtrace needs CAP_SYSLOG)")

// maxNames bounds the names kept: months of uptime must not grow them.
// OOM paths are a few dozen functions.
const maxNames = 4096

// Symbolizer names addresses. Safe for concurrent use.
type Symbolizer struct {
	Path string // "" is /proc/kallsyms

	mu    sync.Mutex
	names map[uint64]string
	index *Index // nil until UseIndex: each miss scans the file
}

// UseIndex has the names come from x from now on: a miss costs two preads,
// not a pass over /proc/kallsyms, and an address x does not cover is
// written 0x<hex>.
func (s *Symbolizer) UseIndex(x *Index) {
	s.mu.Lock()
	s.index = x
	s.mu.Unlock()
}

// Names gives each address its function's name, innermost first as given;
// an address no text symbol covers is written 0x<hex>.
func (s *Symbolizer) Names(ips []uint64) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names == nil {
		s.names = map[uint64]string{}
	}
	var missing []uint64
	for _, ip := range ips {
		if _, ok := s.names[ip]; !ok {
			missing = append(missing, ip)
		}
	}
	if len(missing) > 0 && s.index != nil {
		if len(s.names)+len(missing) > maxNames {
			clear(s.names)
		}
		for _, ip := range missing {
			name, ok, err := s.index.Lookup(ip)
			if err != nil {
				return nil, err
			}
			if !ok {
				name = "0x" + strconv.FormatUint(ip, 16)
			}
			s.names[ip] = name
		}
	} else if len(missing) > 0 {
		found, err := s.scan(missing)
		if err != nil {
			return nil, err
		}
		if len(s.names)+len(found) > maxNames {
			clear(s.names)
		}
		for ip, name := range found {
			s.names[ip] = name
		}
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		name, ok := s.names[ip]
		if !ok { // dropped by a clear just now: the scan had it
			name = "0x" + strconv.FormatUint(ip, 16)
		}
		out[i] = name
	}
	return out, nil
}

// scan reads the file once and names each of ips by the text symbol at or
// below it, the closest (the file is not sorted as a whole: modules and
// BPF programs come after the kernel's own).
func (s *Symbolizer) scan(ips []uint64) (map[uint64]string, error) {
	path := s.Path
	if path == "" {
		path = "/proc/kallsyms"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	best := make([]uint64, len(ips))
	names := make([]string, len(ips))
	r := bufio.NewReaderSize(f, 64<<10)
	visible := false
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			addr, name, ok := parseLine(line)
			if ok {
				visible = visible || addr != 0
				for i, ip := range ips {
					if addr <= ip && addr >= best[i] && addr != 0 {
						best[i] = addr
						names[i] = string(name)
					}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if !visible {
		return nil, ErrHidden
	}
	found := make(map[uint64]string, len(ips))
	for i, ip := range ips {
		if names[i] == "" {
			names[i] = "0x" + strconv.FormatUint(ip, 16)
		}
		found[ip] = names[i]
	}
	return found, nil
}

// parseLine reads "ffffffff81000000 T _stext" (and "... [module]"): the
// address and name of a text symbol; false for anything else. By hand, as
// it runs for every line of the file: no allocation.
func parseLine(line []byte) (uint64, []byte, bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 16 || len(line) < sp+4 || line[sp+2] != ' ' {
		return 0, nil, false
	}
	switch line[sp+1] {
	case 't', 'T', 'w', 'W':
	default:
		return 0, nil, false
	}
	var addr uint64
	for _, c := range line[:sp] {
		switch {
		case c >= '0' && c <= '9':
			addr = addr<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			addr = addr<<4 | uint64(c-'a'+10)
		default:
			return 0, nil, false
		}
	}
	name := line[sp+3:]
	if end := bytes.IndexAny(name, " \t\n"); end >= 0 {
		name = name[:end]
	}
	if len(name) == 0 {
		return 0, nil, false
	}
	return addr, name, true
}
