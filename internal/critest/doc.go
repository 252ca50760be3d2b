// Package critest gives integration tests a real Kubernetes container
// runtime without a cluster: a private containerd with its CRI plugin, which
// the tests drive over the CRI gRPC API the way the kubelet does (sandbox
// first, then containers in it, kubelet-style labels and cgroup parents), so
// that pods run and get OOM-killed exactly as on a node.
//
// A package that uses it calls Main from TestMain: every test of the binary
// shares one containerd (starting it and importing the pause image costs
// about a second), and Main stops it and removes everything it made once the
// tests are done.
//
//	func TestMain(m *testing.M) { critest.Main(m) }
//
// Why a private containerd, and why these settings (all measured on the
// hosts the tests run on):
//
//   - Its own socket, root, state, runc root and opt directory, all under one
//     temporary directory: nothing of a system containerd (Docker's, say) is
//     read or changed, and deleting that directory removes all its state.
//   - No registry: this machine has none. The images (a pause image whose
//     entrypoint is busybox sleep, and the hog image with busybox and
//     oomhog) are written here as docker-archive tars and imported with ctr;
//     sandbox_image names the pause image so the CRI plugin never pulls.
//   - No CNI: pods use the host's network namespace.
//   - restrict_oom_score_adj: the CRI plugin gives the pause container
//     oom_score_adj -998, which needs CAP_SYS_RESOURCE, which root lacks in
//     this sandbox (runc then fails with "can't get final child's PID from
//     pipe: EOF"); the option clamps it to containerd's own value.
//   - The native snapshotter: plain copies, no overlayfs needed. The images
//     are a few MB.
//   - The cgroupfs driver: container cgroups land at
//     /kubepods/<qos>/pod<uid>/<container id> in every hierarchy, the paths a
//     kubelet with cgroupDriver cgroupfs makes, which the tracer's enricher
//     parses.
//
// Cleaning up: every pod is stopped and removed when its test ends (also
// when the test fails), and the pod's cgroups, which the runtime leaves
// behind (the kubelet removes them on a node), are removed with it. Main
// then stops containerd and deletes its directory. A test binary that dies
// without Main's cleanup (killed, or on -timeout) leaves containers behind:
// the next Start sweeps the directories of dead runs (their flock is free),
// killing their containerd, shims and container processes and removing
// their cgroups, mounts and files.
package critest
