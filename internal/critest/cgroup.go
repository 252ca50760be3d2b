package critest

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// QoS classes, as the kubelet names its cgroups.
const (
	Guaranteed = "guaranteed"
	Burstable  = "burstable"
	BestEffort = "besteffort"
)

// podCgroupParent is the cgroup parent the kubelet (cgroupDriver cgroupfs)
// gives a pod's sandbox: guaranteed pods sit right under /kubepods, the
// others under their class's cgroup.
func podCgroupParent(qos, uid string) string {
	if qos == Guaranteed {
		return "/kubepods/pod" + uid
	}
	return "/kubepods/" + qos + "/pod" + uid
}

// cgroupMounts lists the mount points of every cgroup hierarchy: runc's
// cgroupfs driver makes a container's cgroup in each of them (v1: one per
// controller, plus name=systemd; v2 or hybrid: the unified one).
func cgroupMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mnts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(s.Text())
		i := slices.Index(fields, "-")
		if i < 0 || i+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fs := fields[i+1]; (fs == "cgroup" || fs == "cgroup2") && !slices.Contains(mnts, fields[4]) {
			mnts = append(mnts, fields[4])
		}
	}
	return mnts
}

// kubepodsParents are the cgroups above a pod's the kubelet would own (and
// never remove on a node). The tests make them exist by running pods, so
// they are removed when they did not exist before and are empty again.
func kubepodsParents(qos string) []string {
	if qos == Guaranteed {
		return []string{"/kubepods"}
	}
	return []string{"/kubepods/" + qos, "/kubepods"}
}

// missingParents lists the kubepods parents of a pod of class qos that do
// not exist yet in some hierarchy: the ones its pod will create.
func missingParents(qos string) []string {
	var missing []string
	for _, m := range cgroupMounts() {
		for _, p := range kubepodsParents(qos) {
			dir := filepath.Join(m, p)
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				missing = append(missing, dir)
			}
		}
	}
	return missing
}

// removeParents removes those parents (deepest first) that are empty;
// another pod's still there keep theirs.
func removeParents(dirs []string) {
	dirs = slices.Clone(dirs)
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		_ = syscall.Rmdir(d) // EBUSY while it has children: that is fine
	}
}

// removePodCgroups removes a pod's cgroup (and any container cgroup left in
// it) in every hierarchy. The runtime removes a container's cgroup when the
// container is deleted but leaves the pod's, which the kubelet removes on a
// node. Processes still in them (only after a crash: a removed pod has none)
// are killed first.
func removePodCgroups(uid, qos string) error {
	var errs []error
	for _, m := range cgroupMounts() {
		if err := removeCgroupTree(filepath.Join(m, podCgroupParent(qos, uid))); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree kills the processes in a cgroup tree and removes it,
// children first, waiting up to 10s for killed processes to leave.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := cgroupPids(dir)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s (processes %v): %w", dir, pids, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupPids lists the processes in one cgroup (not its children).
func cgroupPids(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// shimSocket is where containerd 1.6's runc shim for a sandbox listens:
// /run/containerd/s/<sha256 of address/namespace/id>, whatever the state
// directory. A shim removes it when it exits cleanly; one that was killed
// leaves it.
func shimSocket(address, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, criNamespace, id)))
	return fmt.Sprintf("/run/containerd/s/%x", sum)
}

// journal entries: see daemon.journal.
type journal struct {
	pods    []journalPod
	ids     []string // sandboxes: each has a shim
	parents []string // kubepods cgroups the pods created
}

type journalPod struct{ uid, qos string }

func appendJournal(path string, lines ...string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	return errors.Join(err, f.Close())
}

func readJournal(path string) journal {
	var j journal
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "pod":
			j.pods = append(j.pods, journalPod{uid: f[1], qos: f[2]})
		case len(f) == 2 && f[0] == "sandbox":
			j.ids = append(j.ids, f[1])
		case len(f) == 2 && f[0] == "parent":
			j.parents = append(j.parents, f[1])
		}
	}
	return j
}
