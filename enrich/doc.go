// Package enrich adds to each kill what the kernel's records do not say:
// cgroup paths and limits, the container or pod, and the model's check of the
// kernel's score. Each part fails on its own: an event always comes out, with
// what could not be found named in its errors.
package enrich
