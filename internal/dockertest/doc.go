// Package dockertest gives tests a Docker engine, a tiny image with a memory
// hog, and ways to run containers that the OOM killer stops.
//
// A package that uses it calls Main from TestMain: every test of the binary
// shares one engine (starting one costs about a second), and Main stops it and
// removes what this package made once the tests are done.
//
//	func TestMain(m *testing.M) { dockertest.Main(m) }
//
// The engine is the machine's own when one answers on /var/run/docker.sock;
// otherwise RequireDocker starts Debian's dockerd with private state under a
// temporary directory (its own socket, data root and containerd), so that a
// test never touches a system Docker, and only then can tests stop and
// restart it. Docker (Debian's docker.io) and a static busybox
// (busybox-static) are installed with apt when missing.
package dockertest
