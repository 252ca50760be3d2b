package kallsyms

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// Index is the kernel's and its modules' text symbols, sorted by address,
// in an unlinked file: the names alone are some 3 MB, more than the
// daemon's whole heap, so they stay in the page cache, reclaimable, and a
// lookup reads one block of entries and one name with pread. Building it is
// one pass over /proc/kallsyms (some 100 ms of CPU, most of it the kernel's
// formatting), made once, off the kill's path.
//
// An address outside the text the index covers (the kernel's own,
// _stext to _etext, and each module loaded when it was built, as
// /proc/modules places them) is not named from it: a BPF program, a
// trampoline, a kprobe's slot, a module loaded since.
type Index struct {
	f       *os.File
	n       int      // entries
	sparse  []uint64 // the address of every blockLen-th entry
	namesAt int64    // where the names start in f
	text    []region // where the index's names hold
}

type region struct{ lo, hi uint64 } // [lo, hi)

// entry is one symbol in the file: its address, and its name's place.
type entry struct {
	addr    uint64
	nameOff uint32
	nameLen uint32
}

const (
	entrySize = 16
	blockLen  = 256 // entries per block: 4 KiB, one page, one pread
)

// BuildIndex reads kallsyms and modules (/proc/kallsyms and /proc/modules
// when ""), and writes the index to an unlinked file in dir.
func BuildIndex(kallsymsPath, modulesPath, dir string) (*Index, error) {
	if kallsymsPath == "" {
		kallsymsPath = "/proc/kallsyms"
	}
	if modulesPath == "" {
		modulesPath = "/proc/modules"
	}
	in, err := os.Open(kallsymsPath)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	f, err := os.CreateTemp(dir, "oomtrace-kallsyms-*")
	if err != nil {
		return nil, fmt.Errorf("kallsyms index: %w", err)
	}
	// Unlinked at once: the file lives as long as the descriptor, and a
	// crashed daemon leaves nothing behind.
	os.Remove(f.Name())
	x := &Index{f: f}
	if err := x.build(in, modulesPath, dir); err != nil {
		f.Close()
		return nil, err
	}
	return x, nil
}

func (x *Index) build(in io.Reader, modulesPath, dir string) error {
	// The names are written as they are read; the entries, 16 bytes a
	// symbol, are kept to be sorted (the file is sorted only within the
	// kernel, then within each module).
	entries := make([]entry, 0, 1<<17) // a distribution kernel has some 120,000
	tmp, err := os.CreateTemp(dir, "oomtrace-kallsyms-names-*")
	if err != nil {
		return fmt.Errorf("kallsyms index: %w", err)
	}
	os.Remove(tmp.Name())
	defer tmp.Close()
	names := bufio.NewWriterSize(tmp, 64<<10)
	var off uint32
	var stext, etext uint64
	visible := false
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if addr, name, ok := parseLine(line); ok {
			visible = visible || addr != 0
			switch string(name) {
			case "_stext":
				stext = addr
			case "_etext":
				etext = addr
			}
			names.Write(name)
			entries = append(entries, entry{addr: addr, nameOff: off, nameLen: uint32(len(name))})
			off += uint32(len(name))
		} else if a, ok := etextLine(line); ok {
			etext = a // _etext is a data symbol ('T' on some kernels, 'R' or 'D' on others)
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("reading kallsyms: %w", err)
		}
	}
	if !visible {
		return ErrHidden
	}
	if err := names.Flush(); err != nil {
		return fmt.Errorf("kallsyms index: %w", err)
	}
	if stext != 0 && etext > stext {
		x.text = append(x.text, region{stext, etext})
	}
	x.text = append(x.text, moduleText(modulesPath)...)

	slices.SortStableFunc(entries, func(a, b entry) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	w := bufio.NewWriterSize(x.f, 64<<10)
	var buf [entrySize]byte
	for i, e := range entries {
		if i%blockLen == 0 {
			x.sparse = append(x.sparse, e.addr)
		}
		binary.LittleEndian.PutUint64(buf[0:], e.addr)
		binary.LittleEndian.PutUint32(buf[8:], e.nameOff)
		binary.LittleEndian.PutUint32(buf[12:], e.nameLen)
		w.Write(buf[:])
	}
	x.n = len(entries)
	x.namesAt = int64(len(entries)) * entrySize
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("kallsyms index: %w", err)
	}
	if _, err := w.ReadFrom(tmp); err != nil {
		return fmt.Errorf("kallsyms index: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("kallsyms index: %w", err)
	}
	return nil
}

// etextLine reads _etext's address from a line parseLine refused (a data
// symbol's).
func etextLine(line []byte) (uint64, bool) {
	f := bytes.Fields(line)
	if len(f) < 3 || string(f[2]) != "_etext" {
		return 0, false
	}
	a, err := strconv.ParseUint(string(f[0]), 16, 64)
	return a, err == nil && a != 0
}

// moduleText is where each loaded module lies ("name size refs deps state
// 0xaddr"); none when the file cannot be read (no modules, or hidden).
func moduleText(path string) []region {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []region
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) < 6 {
			continue
		}
		size, err1 := strconv.ParseUint(string(f[1]), 10, 64)
		base, err2 := strconv.ParseUint(string(bytes.TrimPrefix(f[5], []byte("0x"))), 16, 64)
		if err1 == nil && err2 == nil && base != 0 {
			out = append(out, region{base, base + size})
		}
	}
	return out
}

// Lookup names ip by the closest symbol at or below it; ok is false when
// the index does not cover ip.
func (x *Index) Lookup(ip uint64) (name string, ok bool, err error) {
	if !x.covers(ip) {
		return "", false, nil
	}
	b := lastAtOrBelow(len(x.sparse), func(i int) uint64 { return x.sparse[i] }, ip)
	if b < 0 {
		return "", false, nil
	}
	first := b * blockLen
	count := min(blockLen, x.n-first)
	block := make([]byte, count*entrySize)
	if _, err := x.f.ReadAt(block, int64(first)*entrySize); err != nil {
		return "", false, fmt.Errorf("reading the kallsyms index: %w", err)
	}
	at := func(i int) uint64 { return binary.LittleEndian.Uint64(block[i*entrySize:]) }
	// The last entry of the block at or below ip.
	i := lastAtOrBelow(count, at, ip)
	if i < 0 {
		return "", false, nil
	}
	e := block[i*entrySize:]
	nameOff, nameLen := binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
	nb := make([]byte, nameLen)
	if _, err := x.f.ReadAt(nb, x.namesAt+int64(nameOff)); err != nil {
		return "", false, fmt.Errorf("reading the kallsyms index: %w", err)
	}
	return string(nb), true, nil
}

// lastAtOrBelow is the index of the last of n sorted addresses at or below
// ip, -1 for none.
func lastAtOrBelow(n int, at func(int) uint64, ip uint64) int {
	lo, hi := 0, n // the answer is lo-1 once lo == hi
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if at(mid) <= ip {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

func (x *Index) covers(ip uint64) bool {
	for _, r := range x.text {
		if ip >= r.lo && ip < r.hi {
			return true
		}
	}
	return false
}

// Close releases the file.
func (x *Index) Close() error { return x.f.Close() }
