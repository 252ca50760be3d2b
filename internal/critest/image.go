package critest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The images, named in containerd's normalized form (the CRI plugin reports
// and matches that form). The containerd is private, so fixed tags cannot
// collide with another test binary's.
const (
	PauseImage = "docker.io/library/oomtrace-pause:test"
	hogImage   = "docker.io/library/oomtrace-hog:test"
)

// hogPkg is the memory hog built into the hog image, as a static binary.
const hogPkg = "github.com/oomtrace/oomtrace/internal/oomtest/oomhog"

// busybox is a static busybox (Debian's busybox-static): the images have no
// libc, so a dynamic one would not run in them.
const busybox = "/bin/busybox"

// ImageConfig is the part of an image's config a test image needs.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE
}

// LayerFile is one entry of an image layer.
type LayerFile struct {
	Name string // path in the image, without the leading slash
	Mode int64  // permission bits
	Dir  bool   // a directory
	Link string // a symbolic link to this target
	Src  string // a regular file with this host file's content
}

// WriteDockerArchive writes a one-layer image as a docker-archive tar (what
// `docker save` writes: manifest.json, the config JSON and the layer tar),
// which `ctr images import` reads; no Docker is needed. repoTag is a short
// reference like "name:tag", as docker save writes it; containerd
// normalizes it to docker.io/library/name:tag.
func WriteDockerArchive(w io.Writer, repoTag string, cfg ImageConfig, files []LayerFile) error {
	var layer bytes.Buffer
	if err := writeLayer(&layer, files); err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config": map[string]any{
			"Entrypoint": cfg.Entrypoint,
			"Cmd":        cfg.Cmd,
			"Env":        cfg.Env,
			"WorkingDir": "/",
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(layerSum[:])}},
		"history": []map[string]string{{"created_by": "oomtrace critest.WriteDockerArchive"}},
	})
	if err != nil {
		return err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := hex.EncodeToString(layerSum[:]) + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{repoTag},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: hex.EncodeToString(layerSum[:]) + "/", Mode: 0o755}); err != nil {
		return err
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{layerName, layer.Bytes()}, {configName, config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeLayer(w io.Writer, files []LayerFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Mode: f.Mode}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(f.Name, "/")+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			data, err := os.ReadFile(f.Src)
			if err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return tw.Close()
}

// baseFiles is the skeleton both images share: the directories runc mounts
// over, and busybox.
func baseFiles() []LayerFile {
	files := []LayerFile{{Name: "bin/busybox", Mode: 0o755, Src: busybox}}
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys"} {
		files = append(files, LayerFile{Name: d, Mode: 0o755, Dir: true})
	}
	return append(files, LayerFile{Name: "tmp", Mode: 0o1777, Dir: true})
}

// pauseFiles and pauseConfig make the sandbox image: its container only has
// to hold the pod's namespaces and cgroup, so busybox sleep is enough (the
// runtime stops it with SIGKILL).
func pauseFiles() []LayerFile {
	return append(baseFiles(), LayerFile{Name: "bin/sleep", Mode: 0o777, Link: "busybox"})
}

var pauseConfig = ImageConfig{Entrypoint: []string{"/bin/sleep", "2147483647"}, Env: []string{"PATH=/bin"}}

// hogFiles makes the hog image: busybox with every applet in /bin (so
// /bin/sh runs scripts) and the hog as /bin/oomhog.
func hogFiles(hog string) ([]LayerFile, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	files := append(baseFiles(), LayerFile{Name: "bin/oomhog", Mode: 0o755, Src: hog})
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		files = append(files, LayerFile{Name: "bin/" + a, Mode: 0o777, Link: "busybox"})
	}
	return files, nil
}

var hogConfig = ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}}

// buildHog builds oomhog statically (CGO_ENABLED=0): the image has no libc.
func buildHog(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if gobin, err = exec.LookPath(filepath.Join(runtime.GOROOT(), "bin", "go")); err != nil {
			return "", fmt.Errorf("building oomhog: no go tool: %w", err)
		}
	}
	hog := filepath.Join(dir, "oomhog")
	build := exec.CommandContext(ctx, gobin, "build", "-o", hog, hogPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building oomhog: %w: %s", err, tail(out))
	}
	if err := requireStatic(hog); err != nil {
		return "", err
	}
	return hog, nil
}

// requireStatic fails for an ELF executable that needs a dynamic loader,
// which the images do not have.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is not a static binary: an image without libc cannot run it (for busybox: apt-get install busybox-static)", path)
		}
	}
	return nil
}

// writeArchiveFile writes a docker archive to path.
func writeArchiveFile(path, repoTag string, cfg ImageConfig, files []LayerFile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteDockerArchive(f, repoTag, cfg, files); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// shortRef is ref without containerd's docker.io/library/ prefix, as a
// docker archive names it.
func shortRef(ref string) string { return strings.TrimPrefix(ref, "docker.io/library/") }
