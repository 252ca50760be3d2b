package docker

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEngineHosts(t *testing.T) {
	for _, c := range []struct {
		host, base string
		tls        bool
	}{
		{"unix:///var/run/docker.sock", "http://docker", false},
		{"unix:///run/user/1000/docker.sock", "http://docker", false},
		{"tcp://10.0.0.1:2375", "http://10.0.0.1:2375", false},
		{"tcp://docker.local:2376/prefix/", "http://docker.local:2376/prefix", false},
		{"https://docker.local:2376", "https://docker.local:2376", true},
	} {
		e, err := newEngine(c.host)
		if err != nil {
			t.Errorf("%s: %v", c.host, err)
			continue
		}
		if e.base != c.base {
			t.Errorf("%s: base %q, want %q", c.host, e.base, c.base)
		}
	}
	for _, bad := range []string{"ssh://user@host", "unix://", "tcp://", "npipe:////./pipe/docker_engine", "::"} {
		if _, err := newEngine(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// The environment as the docker CLI reads it: DOCKER_HOST, and
// DOCKER_CERT_PATH turning TCP into TLS (verified with DOCKER_TLS_VERIFY).
func TestEngineFromEnvironment(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	e, err := newEngine("")
	if err != nil {
		t.Fatal(err)
	}
	if e.base != "http://docker" {
		t.Fatalf("no DOCKER_HOST: base %q, want the default socket's", e.base)
	}

	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
	dir := t.TempDir()
	t.Setenv("DOCKER_CERT_PATH", dir)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	e, err = newEngine("")
	if err != nil {
		t.Fatal(err)
	}
	if e.base != "https://127.0.0.1:2376" {
		t.Errorf("DOCKER_CERT_PATH set: base %q, want https", e.base)
	}

	// A CA file that holds no certificate is an error, not an engine
	// trusted blindly.
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newEngine(""); err == nil {
		t.Error("a ca.pem without a certificate: no error")
	}
	// An explicit host leaves the environment's TLS alone.
	if e, err := newEngine("tcp://127.0.0.1:2375"); err != nil {
		t.Error(err)
	} else if e.base != "http://127.0.0.1:2375" {
		t.Errorf("explicit host: base %q, want plain http", e.base)
	}
}
