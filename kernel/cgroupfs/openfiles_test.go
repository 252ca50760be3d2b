package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"
)

// A file read once stays open and is read again from its start; nil keeps
// nothing; past the bound, files are read without being kept.
func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "memory.stat")
	if err := os.WriteFile(p, []byte("anon 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var o OpenFiles
	defer o.Close()
	buf := make([]byte, 64)
	if data, err := o.Read(p, buf); err != nil || string(data) != "anon 1\n" {
		t.Fatalf("first read %q, %v", data, err)
	}
	// Rewritten in place: the kept descriptor reads the new text.
	if err := os.WriteFile(p, []byte("anon 22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := o.Read(p, buf); err != nil || string(data) != "anon 22\n" || o.Len() != 1 {
		t.Fatalf("second read %q, %v, %d open", data, err, o.Len())
	}
	if _, err := o.Read(filepath.Join(dir, "missing"), buf); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := o.Read(p, make([]byte, 4)); err == nil {
		t.Error("a text filling the buffer: no error")
	}
	var none *OpenFiles
	if data, err := none.Read(p, buf); err != nil || string(data) != "anon 22\n" {
		t.Errorf("nil OpenFiles: %q, %v", data, err)
	}
	for i := range maxOpenFiles + 5 {
		q := filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		if err := os.WriteFile(q, []byte("1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Read(q, buf); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.Len(); n != maxOpenFiles {
		t.Errorf("%d files open, want the bound %d", n, maxOpenFiles)
	}
	o.Close()
	if o.Len() != 0 {
		t.Error("files open after Close")
	}
}
