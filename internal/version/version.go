// Package version says which oomtrace this is: the module version and VCS
// revision the Go toolchain stamped into the binary, the Go and cilium/ebpf
// versions it was built with, and the hash of the BPF object it loads. A
// report of a kernel's behaviour is only as good as knowing what ran.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what the build recorded. Empty strings are unknown (a binary
// built without module or VCS information).
type Info struct {
	Version    string // the module version; "(devel)" for a build from a checkout
	Revision   string // VCS revision, "+dirty" appended when the tree had changes
	Time       string // VCS commit time
	Go         string
	CiliumEBPF string // the github.com/cilium/ebpf module version
	BPFObject  string // sha256 of the BPF object, as the caller gives it
}

const ciliumModule = "github.com/cilium/ebpf"

// Read returns this binary's Info; bpfObject is the object's hash.
func Read(bpfObject string) Info {
	i := Info{Go: runtime.Version(), BPFObject: bpfObject}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	i.Version = bi.Main.Version
	for _, d := range bi.Deps {
		if d.Path == ciliumModule {
			i.CiliumEBPF = d.Version
			if d.Replace != nil {
				i.CiliumEBPF = d.Replace.Path + " " + d.Replace.Version
			}
		}
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && i.Revision != "" {
		i.Revision += "+dirty"
	}
	return i
}

// Short is the version for labels: the module version, else the revision,
// else "devel".
func (i Info) Short() string {
	switch {
	case i.Version != "" && i.Version != "(devel)":
		return i.Version
	case i.Revision != "":
		return i.Revision
	}
	return "devel"
}

// String is the --version text, one "name: value" line each.
func (i Info) String() string {
	var b strings.Builder
	line := func(name, value string) {
		if value == "" {
			value = "unknown"
		}
		fmt.Fprintf(&b, "%s: %s\n", name, value)
	}
	line("oomtrace", i.Version)
	line("revision", i.Revision)
	line("commit time", i.Time)
	line("go", i.Go)
	line("cilium/ebpf", i.CiliumEBPF)
	line("bpf object (sha256)", i.BPFObject)
	return b.String()
}
