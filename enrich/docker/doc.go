// Package docker names the containers that OOM kills happen in: it keeps a
// cache of Docker's containers (name, image, labels, memory limit) fed by an
// initial list and then Docker's event stream, so that an OOM event can be
// enriched in microseconds, without a Docker call on the kill's path, and
// even when the container was removed (docker run --rm) a moment after the
// kill.
//
// Lookups are bounded in time: with Docker slow, down or restarting, they
// fail with an error after at most Options.MaxWait, and the caller emits its
// event without the container's metadata.
package docker
