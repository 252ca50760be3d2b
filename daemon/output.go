package daemon

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// output is where event lines go: stdout, or a file reopened on SIGHUP so
// logrotate can move it away. It counts the lines it failed to write (a full
// disk, a closed pipe), so none is lost silently.
type output struct {
	mu       sync.Mutex
	path     string // "" for stdout
	w        io.Writer
	nw       *noWaitFile // w, when it is one: closed with it
	f        *os.File
	failures atomic.Uint64
}

func openOutput(path string, stdout io.Writer) (*output, error) {
	o := &output{path: path, w: stdout}
	if f, ok := stdout.(*os.File); ok {
		o.nw = newNoWaitFile(f)
		o.w = o.nw
	}
	if path != "" {
		if err := o.Reopen(); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Write writes one line; zerolog hands each event over in one call.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.w.Write(p)
	if err != nil {
		o.failures.Add(1)
	}
	return n, err
}

// Reopen opens the file anew (append), after logrotate renamed it.
func (o *output) Reopen() error {
	if o.path == "" {
		return nil
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("opening output %s: %w", o.path, err)
	}
	o.mu.Lock()
	old, oldNW := o.f, o.nw
	o.f, o.nw = f, newNoWaitFile(f)
	o.w = o.nw
	o.mu.Unlock()
	if oldNW != nil {
		_ = oldNW.Close()
	}
	if old != nil {
		return old.Close()
	}
	return nil
}

func (o *output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.nw != nil {
		_ = o.nw.Close()
	}
	if o.f != nil {
		return o.f.Close()
	}
	return nil
}
