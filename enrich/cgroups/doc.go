// Package cgroups turns the cgroup ids the BPF tracer reports into what a
// person can act on: the cgroup's path, the memory limits along that path
// (and which one the OOM hit), and the container, pod or systemd unit the
// path belongs to.
//
// Ids are only meaningful within one hierarchy: victim.cgroup.id and
// oom.memcg.id are ids in the memory controller's hierarchy (the v1 memory
// mount, or v2), while victim.cgroup.dfl_id is an id in the v2 hierarchy.
// On cgroup v1 the two are different kernfs trees whose ids overlap, so a
// Resolver for the memory hierarchy must only be asked about the former.
package cgroups
