package tracer

import (
	"errors"
	"os"
	"testing"
)

func TestPreflightWithoutBTF(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: without it Preflight stops at the capability check")
	}
	defer func(old string) { btfPath = old }(btfPath)
	btfPath = "/nonexistent/vmlinux"
	if err := Preflight(); !errors.Is(err, ErrNoBTF) {
		t.Fatalf("Preflight() = %v, want ErrNoBTF", err)
	}
	if _, err := Open(Config{}); !errors.Is(err, ErrNoBTF) {
		t.Fatalf("Open() = %v, want ErrNoBTF", err)
	}
}
