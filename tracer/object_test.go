package tracer

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"runtime"
	"testing"
)

// The hash is of the object file generated for this architecture.
func TestObjectHashIsTheObjectFile(t *testing.T) {
	file := map[string]string{"amd64": "oomtrace_x86_bpfel.o", "arm64": "oomtrace_arm64_bpfel.o"}[runtime.GOARCH]
	if file == "" {
		t.Skipf("no BPF object is generated for %s", runtime.GOARCH)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got, want := ObjectHash(), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("ObjectHash %s, the file's sha256 %s", got, want)
	}
}
