package dockertest

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// ensurePackages installs Debian's docker.io and busybox-static when missing.
// It belongs in scripts/install-deps.sh too; doing it here as well keeps
// `go test ./...` working on a fresh machine. The busybox goes into images,
// which have no libc: Debian's plain busybox is dynamic and would not run.
func ensurePackages() error {
	var missing []string
	_, errd := os.Stat("/usr/sbin/dockerd")
	_, errc := exec.LookPath("docker")
	if errd != nil || errc != nil {
		missing = append(missing, "docker.io")
	}
	if ok, err := isStatic("/bin/busybox"); err != nil || !ok {
		missing = append(missing, "busybox-static")
	}
	if len(missing) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"update", "-qq"},
		// Wait for the dpkg lock: another test binary may be installing too.
		slices.Concat([]string{"install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}, missing),
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("installing %s: apt-get %s: %w: %s", strings.Join(missing, " "), args[0], err, tail(out))
		}
	}
	if ok, err := isStatic("/bin/busybox"); err != nil || !ok {
		return fmt.Errorf("/bin/busybox is not a static binary after installing busybox-static (%v)", err)
	}
	return nil
}

// isStatic reports whether an ELF executable needs no dynamic loader.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// tail is the end of a command's output, enough to say why it failed.
func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}
