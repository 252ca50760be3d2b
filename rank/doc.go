// Package rank predicts, per memory cgroup, which process the kernel's OOM
// killer would pick next and how close the cgroup is to its limit.
//
// A memcg OOM in cgroup X scans every process of X's whole subtree
// (mem_cgroup_scan_tasks) and scores each with oom_badness() against X's
// own limit plus the swap X may use. So the unit here is the limited
// cgroup: for each cgroup with a memory limit and processes below it, its
// usage against its effective limit (the smallest on its path) and the top
// candidates of its subtree, each tagged with the cgroup it lives in. The
// root stands for a global OOM (every process, scored against RAM + swap).
// Processes in unlimited cgroups therefore show up under their nearest
// limited ancestor, and all of them under the root.
//
// A cgroup whose own limit is shadowed by a smaller one higher up cannot hit
// its own limit first (a parent's usage includes its children's): the
// effective limit and the cgroup holding it say where the OOM would happen,
// and the holder's own row lists the candidates that OOM would weigh.
//
// Cost: a snapshot walks the hierarchy once, resolving limits top-down (one
// limit read per cgroup, never the whole chain per cgroup), and reads three
// small /proc files per process. The Watcher behind the daemon's oom_risk
// events is cheaper: per scan one limit read per cgroup and one usage read
// per limited one; memory.stat only near the threshold; the processes only
// of a cgroup that just crossed it. And it scans only when woken: on cgroup
// v1 by the kernel (a usage level crossed, a cgroup created, a limit
// written), elsewhere every interval (see Watcher).
package rank
