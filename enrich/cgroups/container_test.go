package cgroups

import (
	"strings"
	"testing"
)

const (
	id1 = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
	id2 = "aa11bb22cc33dd44ee55ff6600778899aa11bb22cc33dd44ee55ff6600778899"
	uid = "8e9c0d1f-2a3b-4c5d-8e7f-901a2b3c4d5e"
)

// uidSlice is the pod UID as the systemd driver spells it in slice names.
var uidSlice = strings.ReplaceAll(uid, "-", "_")

func TestParseContainer(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Container
	}{
		// Docker, both drivers; docker in docker is the inner one.
		{"/docker/" + id1, Container{Runtime: "docker", ID: id1}},
		{"/system.slice/docker-" + id1 + ".scope", Container{Runtime: "docker", ID: id1, Unit: "docker-" + id1 + ".scope"}},
		{"/docker/" + id1 + "/docker/" + id2, Container{Runtime: "docker", ID: id2}},
		// systemd inside a container: the container, and the unit in it.
		{"/docker/" + id1 + "/system.slice/nginx.service", Container{Runtime: "docker", ID: id1, Unit: "nginx.service"}},

		// Kubernetes, systemd driver, the three QoS classes.
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSlice + ".slice/cri-containerd-" + id1 + ".scope",
			Container{Runtime: "containerd", ID: id1, Unit: "cri-containerd-" + id1 + ".scope", PodUID: uid, QoS: "Burstable"}},
		{"/kubepods.slice/kubepods-pod" + uidSlice + ".slice/cri-containerd-" + id1 + ".scope",
			Container{Runtime: "containerd", ID: id1, Unit: "cri-containerd-" + id1 + ".scope", PodUID: uid, QoS: "Guaranteed"}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSlice + ".slice/crio-" + id1 + ".scope",
			Container{Runtime: "crio", ID: id1, Unit: "crio-" + id1 + ".scope", PodUID: uid, QoS: "BestEffort"}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSlice + ".slice/crio-conmon-" + id1 + ".scope",
			Container{Runtime: "conmon", ID: id1, Unit: "crio-conmon-" + id1 + ".scope", PodUID: uid, QoS: "Burstable"}},
		// kind: the node's kubelet slice prefixes every name.
		{"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidSlice + ".slice/cri-containerd-" + id1 + ".scope",
			Container{Runtime: "containerd", ID: id1, Unit: "cri-containerd-" + id1 + ".scope", PodUID: uid, QoS: "BestEffort"}},
		// The pod's own cgroup (a pod-level memcg hit its limit).
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSlice + ".slice",
			Container{PodUID: uid, QoS: "Burstable"}},
		// Static pod: the UID is a 32-hex hash.
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0123456789abcdef0123456789abcdef.slice/cri-containerd-" + id1 + ".scope",
			Container{Runtime: "containerd", ID: id1, Unit: "cri-containerd-" + id1 + ".scope", PodUID: "0123456789abcdef0123456789abcdef", QoS: "Burstable"}},

		// Kubernetes, cgroupfs driver.
		{"/kubepods/burstable/pod" + uid + "/" + id1, Container{Runtime: "cri", ID: id1, PodUID: uid, QoS: "Burstable"}},
		{"/kubepods/besteffort/pod" + uid + "/" + id1, Container{Runtime: "cri", ID: id1, PodUID: uid, QoS: "BestEffort"}},
		{"/kubepods/pod" + uid + "/" + id1, Container{Runtime: "cri", ID: id1, PodUID: uid, QoS: "Guaranteed"}},
		{"/kubepods/burstable/pod" + uid + "/crio-" + id1, Container{Runtime: "crio", ID: id1, PodUID: uid, QoS: "Burstable"}},
		{"/kubepods/burstable/pod" + uid, Container{PodUID: uid, QoS: "Burstable"}},

		// Podman, rootful and rootless (the container's inner cgroup).
		{"/machine.slice/libpod-" + id1 + ".scope", Container{Runtime: "podman", ID: id1, Unit: "libpod-" + id1 + ".scope"}},
		{"/machine.slice/libpod-conmon-" + id1 + ".scope", Container{Runtime: "conmon", ID: id1, Unit: "libpod-conmon-" + id1 + ".scope"}},
		{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container",
			Container{Runtime: "podman", ID: id1, Unit: "libpod-" + id1 + ".scope"}},
		{"/libpod_parent/libpod-" + id1, Container{Runtime: "podman", ID: id1}},

		// Plain systemd units.
		{"/system.slice/nginx.service", Container{Runtime: "systemd", Unit: "nginx.service"}},
		{"/system.slice/system-getty.slice/getty@tty1.service", Container{Runtime: "systemd", Unit: "getty@tty1.service"}},
		{"/user.slice/user-1000.slice/session-3.scope", Container{Runtime: "systemd", Unit: "session-3.scope"}},
		{"/system.slice/docker.service", Container{Runtime: "systemd", Unit: "docker.service"}},

		// Nothing to say, and near misses that must not yield garbage.
		{"/", Container{}},
		{"", Container{}},
		{"/user.slice", Container{}},
		{"/kubepods.slice/kubepods-burstable.slice", Container{}},
		{"/oomtrace-test-memcg-123/child", Container{}},
		{"/docker/" + id1[:63], Container{}},                                                        // short id
		{"/docker/" + strings.ToUpper(id1), Container{}},                                            // not lowercase hex
		{"/docker/" + id1 + "0", Container{}},                                                       // long id
		{"/other/" + id1, Container{}},                                                              // bare id outside docker/ and pods
		{"/system.slice/docker-abc.scope", Container{Runtime: "systemd", Unit: "docker-abc.scope"}}, // a scope, not a container
		{"/kubepods/burstable/podnot-a-uid/" + id1, Container{}},
		{"/kubepods/burstable/pod" + uid[:35] + "/" + id1, Container{}},
		{"/elsewhere/burstable/pod" + uid + "/" + id1, Container{}}, // not under kubepods
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSlice[:20] + ".slice", Container{}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSlice + ".slice/" + id1, Container{PodUID: uid, QoS: "Burstable"}},
	} {
		if got := ParseContainer(tc.path); got != tc.want {
			t.Errorf("ParseContainer(%q)\n got %+v\nwant %+v", tc.path, got, tc.want)
		}
	}
}
