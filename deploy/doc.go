// Package deploy holds no Go code to import: its directory is how oomtrace
// is deployed (systemd/, docker/, kubernetes/; the Vagrantfile is at the
// repository root), and its tests check those files against the real
// binary: the systemd unit's capability set and system call filter, the
// container image's options and the DaemonSet's, and `vagrant validate`.
// docs/deploy.md explains every choice and what was measured.
package deploy
