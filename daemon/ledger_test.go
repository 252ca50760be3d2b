package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/oomtrace/oomtrace/event"
	"github.com/oomtrace/oomtrace/kernel/kmsg"
	"github.com/oomtrace/oomtrace/ledger"
	"github.com/rs/zerolog"
)

// A kill backfilled from the kernel log: what its lines say, the rest
// named unknown, and a console sentence that does not trip on the nulls.
func TestKmsgKillEvent(t *testing.T) {
	var c kmsg.Collector
	for _, l := range []string{
		"6,10,2000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=hog,pid=42,uid=0",
		"3,11,2000100,-;Memory cgroup out of memory: Killed process 42 (hog) total-vm:900kB, anon-rss:4096kB, file-rss:8kB, shmem-rss:0kB, UID:7 pgtables:40kB oom_score_adj:300",
		"3,12,3000000,-;Memory cgroup out of memory: Killed process 43 (hog2) total-vm:900kB, anon-rss:400kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:8kB oom_score_adj:0",
	} {
		r, _ := kmsg.ParseRecord([]byte(l))
		c.Add(r)
	}
	boot := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k := kmsgKillEvent(c.Kills[0], boot)
	if k.Source != event.SourceKmsg || k.Victim.Pid != 42 || k.Victim.UID != 7 || k.Victim.OOMScoreAdj != 300 ||
		k.Victim.Pages.Anon != 1024 || k.Victim.Pages.File != 2 || k.Victim.Pages.PgTables != 10 {
		t.Errorf("victim %+v", k.Victim)
	}
	if !k.Time.Equal(boot.Add(2000100*time.Microsecond)) || k.BootNs != 2000100000 {
		t.Errorf("time %v boot_ns %d", k.Time, k.BootNs)
	}
	if p := k.Victim.Cgroup.Path; p == nil || *p != "/a/b" || *k.OOM.Memcg.Path != "/a" || *k.OOM.Constraint != "memcg" {
		t.Errorf("cgroup %v oom %+v", p, k.OOM)
	}
	k2 := kmsgKillEvent(c.Kills[1], boot)
	if k2.Victim.Cgroup.Path != nil || k2.EnrichErrors["cgroup"] == "" {
		t.Errorf("no summary: cgroup %v, enrich_errors %v", k2.Victim.Cgroup.Path, k2.EnrichErrors)
	}
	var buf bytes.Buffer
	event.Write(zerolog.New(newConsoleWriter(&buf, false)), zerolog.InfoLevel, k2)
	if !strings.Contains(buf.String(), "hog2[43]") {
		t.Errorf("console: %s", buf.String())
	}
}

// A traced kill has the ledger saved within ledgerAfterKill, not only at
// the next interval or at stop.
func TestLedgerSavedAfterKill(t *testing.T) {
	dir := t.TempDir()
	k := &keeper{dir: dir, log: zerolog.Nop(), kicks: make(chan struct{}, 1), bootID: "b"}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); k.run(stop) }()
	defer func() { close(stop); <-done }()
	start := time.Now()
	k.killed()
	k.killed() // a storm: one save
	for time.Since(start) < ledgerAfterKill+3*time.Second {
		if s, err := ledger.Load(dir); err == nil {
			if s.BootID != "b" || s.MonotonicNs == 0 {
				t.Errorf("saved %+v", s)
			}
			t.Logf("saved %v after the kill", time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no ledger saved %v after a kill", ledgerAfterKill+3*time.Second)
}
