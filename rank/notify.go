package rank

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/oomtrace/oomtrace/internal/fdwait"
	"github.com/oomtrace/oomtrace/internal/kfile"
	"github.com/oomtrace/oomtrace/kernel/cgroupfs"
	"golang.org/x/sys/unix"
)

// notifier wakes the Watcher only when a scan could find something new, so
// that a quiet node costs no wake-ups at all. On cgroup v1 the kernel
// signals an eventfd when a cgroup's usage crosses a level registered
// through cgroup.event_control (either way), and inotify reports cgroups
// created and limits written.
//
// cgroup v2 has no usage levels to register (memory.events reports only
// reaching memory.high and memory.max, too late for a warning), and a
// read-only hierarchy (systemd's ProtectControlGroups=, a container's
// read-only mount) accepts no registration: there the Watcher polls.
type notifier struct {
	src   Source
	files cgroupfs.Files // v1's: the limit whose writes wake, the usage levels watch
	c     chan struct{}  // a scan is due; capacity 1, so bursts coalesce
	// quit ends a dueOrPause() waiting for the watcher to take a notification.
	quit chan struct{}

	epfd, inotify, stop int
	// wait parks the loop in the runtime's poller until the epoll set has
	// events, so that no P sits in a blocking epoll_wait (see fdwait).
	wait *fdwait.Waiter
	done chan struct{}

	mu     sync.Mutex
	thresh int              // the eventfd every registered level signals
	levels map[uint64]int64 // cgroup id → usage level registered on thresh
	wds    map[int32]uint64 // inotify watch → cgroup id
	watch  map[uint64]bool  // cgroup ids whose directory is watched
	failed error            // the loop stopped: the Watcher must poll
}

// Tags of the descriptors in the epoll set (EpollEvent.Fd is free data).
const (
	tagStop int32 = iota
	tagInotify
	tagThresh
)

// errNoLevels says why a hierarchy cannot notify.
var errNoLevels = errors.New("cgroup v2 offers no memory usage notifications (memory.events fires at memory.high and memory.max only)")

// newNotifier sets up the descriptors, or says why this hierarchy cannot
// notify.
func newNotifier(src Source) (*notifier, error) {
	if src.Hierarchy.V2 {
		return nil, errNoLevels
	}
	control := src.dir("/") + "/cgroup.event_control"
	if err := unix.Access(control, unix.W_OK); err != nil {
		return nil, fmt.Errorf("cannot register memory usage levels in %s: %w", control, err)
	}
	n := &notifier{src: src, files: src.Hierarchy.Files(), c: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		epfd: -1, inotify: -1, stop: -1, thresh: -1,
		levels: map[uint64]int64{}, wds: map[int32]uint64{}, watch: map[uint64]bool{}}
	var err error
	if n.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
		if n.inotify, err = unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC); err == nil {
			if n.stop, err = newEventfd(); err == nil {
				n.thresh, err = newEventfd()
			}
		}
	}
	for _, d := range []struct {
		fd  int
		tag int32
	}{{n.stop, tagStop}, {n.inotify, tagInotify}, {n.thresh, tagThresh}} {
		if err == nil {
			err = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_ADD, d.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: d.tag})
		}
	}
	if err == nil {
		n.wait, err = fdwait.New(n.epfd, "cgroup notifications' epoll")
	}
	if err != nil {
		n.closeFds()
		return nil, fmt.Errorf("setting up cgroup notifications: %w", err)
	}
	go n.loop()
	return n, nil
}

func newEventfd() (int, error) {
	return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
}

// close stops the loop and closes every descriptor; closing the eventfd
// unregisters its levels in the kernel.
func (n *notifier) close() {
	close(n.quit)
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(n.stop, one[:])
	<-n.done
	n.closeFds()
}

func (n *notifier) closeFds() {
	if n.wait != nil {
		n.wait.Close()
	}
	for _, fd := range []int{n.thresh, n.stop, n.inotify, n.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// loop waits, with no timeout, and says a scan is due when a level was
// crossed, a cgroup removed (the kernel signals its levels' eventfd then),
// created, or its limit written.
func (n *notifier) loop() {
	defer close(n.done)
	events := make([]unix.EpollEvent, 4)
	buf := make([]byte, 16<<10)
	for {
		var k int
		var err error
		if werr := n.wait.Wait(time.Time{}, func() bool {
			// Raw, as the reads below: these never block, and an
			// ordinary system call wakes sysmon (internal/kfile), two or
			// three times per kill in a storm.
			k, err = kfile.PollEpoll(n.epfd, events)
			return k > 0 || err != nil
		}); werr != nil {
			err = werr
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			n.mu.Lock()
			n.failed = fmt.Errorf("waiting for cgroup notifications: %w", err)
			n.mu.Unlock()
			n.due()
			return
		}
		due := false
		for _, ev := range events[:k] {
			switch ev.Fd {
			case tagStop:
				return
			case tagInotify:
				due = n.readInotify(buf) || due
			case tagThresh:
				var count [8]byte
				n.mu.Lock()
				_, _ = kfile.Read(n.thresh, count[:]) // reset the counter
				n.mu.Unlock()
				due = true
			}
		}
		if due && !n.dueOrPause() {
			return
		}
	}
}

// dueOrPause says a scan is due. When one is already pending, the watcher
// is waiting out its pace (notifiedGap): until it takes the pending one,
// the level and inotify descriptors are taken out of the epoll set's
// interest, so their signals wake nothing (an eventfd wakes its epoll set on
// every signal, read or not). An OOM storm signals two or three times per
// kill: each kill takes usage down through a level, the next allocation back
// up, and each new process joining writes cgroup.procs. False once closed.
func (n *notifier) dueOrPause() bool {
	select {
	case n.c <- struct{}{}:
		return true
	default:
	}
	n.interest(0)
	defer n.interest(unix.EPOLLIN)
	select {
	case n.c <- struct{}{}:
		return true
	case <-n.quit:
		return false
	}
}

// interest sets the events the epoll set wants of the level and inotify
// descriptors. Modifying re-checks them: what came meanwhile is signalled.
func (n *notifier) interest(events uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_ = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_MOD, n.thresh, &unix.EpollEvent{Events: events, Fd: tagThresh})
	_ = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_MOD, n.inotify, &unix.EpollEvent{Events: events, Fd: tagInotify})
}

// due says a scan is due, at once: the loop stops after it.
func (n *notifier) due() {
	select {
	case n.c <- struct{}{}:
	default:
	}
}

// readInotify drains the inotify queue and says whether any event calls
// for a scan. Its own registrations (writes to cgroup.event_control) and
// processes moving (cgroup.procs) do not.
func (n *notifier) readInotify(buf []byte) bool {
	due := false
	for {
		m, err := kfile.Read(n.inotify, buf)
		if err != nil || m <= 0 {
			return due
		}
		for off := 0; off+unix.SizeofInotifyEvent <= m; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			start := off + unix.SizeofInotifyEvent
			name := string(bytes.TrimRight(buf[start:min(start+nameLen, m)], "\x00"))
			off = start + nameLen
			switch {
			case mask&unix.IN_Q_OVERFLOW != 0:
				due = true // events were lost: look at everything
			case mask&unix.IN_IGNORED != 0: // the directory is gone
				n.mu.Lock()
				delete(n.watch, n.wds[wd])
				delete(n.wds, wd)
				n.mu.Unlock()
			case mask&unix.IN_CREATE != 0 && mask&unix.IN_ISDIR != 0:
				due = true
			case mask&unix.IN_MODIFY != 0 && name == n.files.Limit:
				due = true
			}
		}
	}
}

// sync makes the registrations match a scan: a level on every cgroup that
// holds its effective limit, level(limit) bytes of usage, and an inotify
// watch on every cgroup directory. It returns how many levels and watches
// it added: a crossing, a child or a limit written between the scan's
// reads and the registration is not signalled, so the Watcher scans once
// more soon after. An error means the Watcher must poll from now on.
func (n *notifier) sync(nodes []node, level func(limit int64) int64) (added int, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failed != nil {
		return 0, n.failed
	}
	want := map[uint64]int64{}
	present := map[uint64]bool{}
	for i, nd := range nodes {
		present[nd.id] = true
		if nd.effAt == i && nd.limit >= 0 && i > 0 {
			want[nd.id] = level(nd.limit)
		}
	}
	// Forget watches of cgroups gone (inotify's own notice of it,
	// IN_IGNORED, is lost when its queue overflows): months of container
	// churn must not grow these maps.
	for wd, id := range n.wds {
		if !present[id] {
			delete(n.wds, wd)
			delete(n.watch, id)
		}
	}
	// A level that changed, or a cgroup no longer holding a limit, can
	// only be unregistered by closing the eventfd: register everything
	// on a new one, then close the old.
	renew := false
	for id, lvl := range n.levels {
		if !present[id] {
			delete(n.levels, id) // removed: the kernel dropped its level
			continue
		}
		if w, ok := want[id]; !ok || w != lvl {
			renew = true
		}
	}
	if renew {
		fd, err := newEventfd()
		if err != nil {
			return 0, fmt.Errorf("renewing the cgroup notifications' eventfd: %w", err)
		}
		if err := unix.EpollCtl(n.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: tagThresh}); err != nil {
			unix.Close(fd)
			return 0, fmt.Errorf("renewing the cgroup notifications' eventfd: %w", err)
		}
		old := n.thresh
		n.thresh, n.levels = fd, map[uint64]int64{}
		defer func() {
			_ = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_DEL, old, nil)
			unix.Close(old) // after the new levels are in: no gap
		}()
	}
	for _, nd := range nodes {
		dir := n.src.dir(nd.path)
		if !n.watch[nd.id] {
			wd, err := unix.InotifyAddWatch(n.inotify, dir, unix.IN_CREATE|unix.IN_MODIFY|unix.IN_ONLYDIR)
			switch {
			case err == nil:
				n.watch[nd.id], n.wds[int32(wd)] = true, nd.id
				added++
			case errors.Is(err, unix.ENOSPC):
				return added, fmt.Errorf("watching %s: inotify watches exhausted (sysctl fs.inotify.max_user_watches): %w", dir, err)
			case !vanished(err):
				return added, fmt.Errorf("watching %s: %w", dir, err)
			}
		}
		lvl, ok := want[nd.id]
		if cur, done := n.levels[nd.id]; !ok || done && cur == lvl {
			continue
		}
		if err := register(n.thresh, dir, n.files.Usage, lvl); vanished(err) {
			continue
		} else if err != nil {
			return added, err
		}
		n.levels[nd.id] = lvl
		added++
	}
	return added, nil
}

// vanished is a cgroup removed while we looked.
func vanished(err error) bool { return cgroupfs.Removed(err) }

// register asks the kernel to signal efd when the usage of the cgroup at
// dir crosses level bytes, up or down (memory thresholds, cgroup v1), as
// its file usage reads.
func register(efd int, dir, usageFile string, level int64) error {
	usage, err := unix.Open(dir+"/"+usageFile, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(usage)
	control, err := unix.Open(dir+"/cgroup.event_control", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if vanished(err) {
			return err
		}
		return fmt.Errorf("registering a memory usage level in %s: %w", dir, err)
	}
	defer unix.Close(control)
	line := strconv.Itoa(efd) + " " + strconv.Itoa(usage) + " " + strconv.FormatInt(level, 10)
	if _, err := unix.Write(control, []byte(line)); err != nil {
		if vanished(err) {
			return err
		}
		return fmt.Errorf("registering a memory usage level in %s: %w", dir, err)
	}
	return nil
}
