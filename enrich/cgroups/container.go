package cgroups

import (
	"regexp"
	"strings"
)

// Container is what a cgroup path says about the workload in it. Fields
// are empty when the path does not say.
type Container struct {
	// Runtime is docker, containerd, crio, podman, cri (a Kubernetes
	// container under the cgroupfs driver: the path does not name the CRI
	// runtime), conmon (CRI-O's and podman's monitor process, which runs
	// beside the container, not in it; ID is the container it watches) or
	// systemd (a plain unit, see Unit).
	Runtime string `json:"runtime,omitempty"`
	ID      string `json:"id,omitempty"`   // 64 hex digits
	Unit    string `json:"unit,omitempty"` // innermost systemd .service or .scope
	PodUID  string `json:"pod_uid,omitempty"`
	QoS     string `json:"qos,omitempty"` // Kubernetes QoS class: Guaranteed, Burstable, BestEffort
}

var (
	// Runtime-named scopes (systemd driver) and directories (cgroupfs:
	// crio-<id>, libpod-<id>). Ids must be full 64-hex ids.
	scopeRe = regexp.MustCompile(`^(docker|cri-containerd|crio-conmon|crio|libpod-conmon|libpod)-([0-9a-f]{64})(?:\.scope)?$`)
	idRe    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// kubepods-burstable-pod<uid>.slice, kubepods-pod<uid>.slice; any
	// prefix before kubepods (kind: kubelet-kubepods-...).
	podSliceRe = regexp.MustCompile(`^(?:[a-z0-9_.-]+-)?kubepods(?:-(burstable|besteffort))?-pod([0-9a-f_]+)\.slice$`)
	podDirRe   = regexp.MustCompile(`^pod([0-9a-f-]+)$`)
	// A pod UID is a UUID, or for a static pod the 32-hex hash of its manifest.
	uidRe  = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)
	unitRe = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(?:service|scope)$`)
)

var runtimes = map[string]string{
	"docker": "docker", "cri-containerd": "containerd", "crio": "crio",
	"libpod": "podman", "crio-conmon": "conmon", "libpod-conmon": "conmon",
}

var qosClasses = map[string]string{"": "Guaranteed", "burstable": "Burstable", "besteffort": "BestEffort"}

// ParseContainer reads the container runtime and id, systemd unit and
// Kubernetes pod from a cgroup path, innermost match first (a container
// nested in another container is the inner one). Paths of both cgroup
// drivers are understood:
//
//	/docker/<id>                         /system.slice/docker-<id>.scope
//	/kubepods/burstable/pod<uid>/<id>    /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//	/kubepods/pod<uid>/crio-<id>         /kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope
//	/system.slice/nginx.service
func ParseContainer(path string) Container {
	var c Container
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		seg, parent := segs[i], ""
		if i > 0 {
			parent = segs[i-1]
		}
		if c.Unit == "" && unitRe.MatchString(seg) {
			c.Unit = seg
		}
		if c.ID == "" {
			if m := scopeRe.FindStringSubmatch(seg); m != nil {
				c.Runtime, c.ID = runtimes[m[1]], m[2]
			} else if idRe.MatchString(seg) && parent == "docker" {
				c.Runtime, c.ID = "docker", seg
			} else if idRe.MatchString(seg) && i > 0 && podFromDir(segs[:i]) != nil {
				c.Runtime, c.ID = "cri", seg
			}
		}
		if c.PodUID == "" {
			if p := podFromSlice(seg); p != nil {
				c.PodUID, c.QoS = p[0], p[1]
			} else if p := podFromDir(segs[:i+1]); p != nil {
				c.PodUID, c.QoS = p[0], p[1]
			}
		}
	}
	if c.Runtime == "" && c.Unit != "" {
		c.Runtime = "systemd"
	}
	return c
}

// podFromSlice reads a systemd-driver pod slice: [uid, qos] or nil.
func podFromSlice(seg string) []string {
	m := podSliceRe.FindStringSubmatch(seg)
	if m == nil {
		return nil
	}
	uid := strings.ReplaceAll(m[2], "_", "-") // systemd slice names cannot hold dashes
	if !uidRe.MatchString(uid) {
		return nil
	}
	return []string{uid, qosClasses[m[1]]}
}

// podFromDir reads a cgroupfs-driver pod directory, the last of segs, which
// must sit in kubepods/ (Guaranteed) or kubepods/<qos>/: [uid, qos] or nil.
func podFromDir(segs []string) []string {
	n := len(segs)
	m := podDirRe.FindStringSubmatch(segs[n-1])
	if m == nil || !uidRe.MatchString(m[1]) || n < 2 {
		return nil
	}
	switch {
	case segs[n-2] == "kubepods":
		return []string{m[1], qosClasses[""]}
	case n >= 3 && segs[n-3] == "kubepods" && (segs[n-2] == "burstable" || segs[n-2] == "besteffort"):
		return []string{m[1], qosClasses[segs[n-2]]}
	}
	return nil
}
