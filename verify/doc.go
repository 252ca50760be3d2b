// Package verify checks that this node's kernel picks and counts OOM victims
// the way the oom_badness model says: it provokes real OOM kills in scratch
// memory cgroups under the tracer, one scenario at a time, and compares what
// the kernel did with the prediction.
package verify
