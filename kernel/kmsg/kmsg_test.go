package kmsg

import "testing"

// Lines as /dev/kmsg gives them. 5.10 (Debian 11's 5.10.218) and 6.12 print
// the same "Killed process" fields (UID, pgtables and oom_score_adj since
// 5.3); 4.19 printed the rss fields alone.
var (
	kill510   = "3,1234,2636318893,-;Memory cgroup out of memory: Killed process 412 (oomhog-memcg) total-vm:1100400kB, anon-rss:63980kB, file-rss:3064kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0\n"
	sum510    = "6,1233,2636318800,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/oomtrace-test-memcg-77,task_memcg=/oomtrace-test-memcg-77,task=oomhog-memcg,pid=412,uid=0\n"
	kill612   = "3,88021,21221533557,-;Memory cgroup out of memory: Killed process 16685 (best trigger)) total-vm:1715712kB, anon-rss:72320kB, file-rss:14732kB, shmem-rss:8kB, UID:1000 pgtables:328kB oom_score_adj:-17\n SUBSYSTEM=x\n"
	global612 = "6,90,5000,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0-1,3,global_oom,task_memcg=/system.slice/a.service,task=big,pid=700,uid=33"
	kill419   = "3,5,100,-;Out of memory: Killed process 9 (x) total-vm:100kB, anon-rss:40kB, file-rss:4kB, shmem-rss:0kB"
)

func TestParseRecord(t *testing.T) {
	r, ok := ParseRecord([]byte(kill612))
	if !ok || r.Seq != 88021 || r.TsUsec != 21221533557 {
		t.Fatalf("%+v %v", r, ok)
	}
	if r.Msg[len(r.Msg)-1] != '7' {
		t.Errorf("continuation lines kept: %q", r.Msg)
	}
	for _, bad := range []string{"", "no semicolon", "6,x,1,-;m", "6,1;m"} {
		if _, ok := ParseRecord([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseKill(t *testing.T) {
	for _, c := range []struct {
		line string
		want Kill
		adj  int32
		pgt  uint64
	}{
		{kill510, Kill{Pid: 412, Comm: "oomhog-memcg", TotalVMKB: 1100400, AnonKB: 63980, FileKB: 3064, ShmemKB: 0, UID: 0}, 0, 200},
		{kill612, Kill{Pid: 16685, Comm: "best trigger)", TotalVMKB: 1715712, AnonKB: 72320, FileKB: 14732, ShmemKB: 8, UID: 1000}, -17, 328},
	} {
		r, _ := ParseRecord([]byte(c.line))
		k, ok := ParseKill(r.Msg)
		if !ok || k.OOMScoreAdj == nil || k.PgtablesKB == nil {
			t.Fatalf("%q: %+v %v", c.line, k, ok)
		}
		if *k.OOMScoreAdj != c.adj || *k.PgtablesKB != c.pgt {
			t.Errorf("%q: adj %d pgtables %d", c.line, *k.OOMScoreAdj, *k.PgtablesKB)
		}
		k.OOMScoreAdj, k.PgtablesKB = nil, nil
		if k != c.want {
			t.Errorf("%q:\n got %+v\nwant %+v", c.line, k, c.want)
		}
	}
	r, _ := ParseRecord([]byte(kill419))
	k, ok := ParseKill(r.Msg)
	if !ok || k.Pid != 9 || k.AnonKB != 40 || k.OOMScoreAdj != nil || k.PgtablesKB != nil {
		t.Errorf("4.19 line: %+v %v", k, ok)
	}
	if _, ok := ParseKill("oom_reaper: reaped process 412 (oomhog), now anon-rss:0kB"); ok {
		t.Error("oom_reaper line parsed as a kill")
	}
}

func TestParseSummary(t *testing.T) {
	r, _ := ParseRecord([]byte(sum510))
	s, ok := ParseSummary(r.Msg)
	want := Summary{Constraint: "CONSTRAINT_MEMCG", OOMMemcg: "/oomtrace-test-memcg-77", TaskMemcg: "/oomtrace-test-memcg-77", Task: "oomhog-memcg", Pid: 412}
	if !ok || s != want {
		t.Errorf("memcg: %+v %v", s, ok)
	}
	r, _ = ParseRecord([]byte(global612))
	s, ok = ParseSummary(r.Msg)
	want = Summary{Constraint: "CONSTRAINT_NONE", TaskMemcg: "/system.slice/a.service", Task: "big", Pid: 700, UID: 33}
	if !ok || s != want {
		t.Errorf("global: %+v %v", s, ok)
	}
}

// A kill takes the summary just before it for its pid, and only that one.
func TestCollector(t *testing.T) {
	var c Collector
	for _, l := range []string{sum510, kill510, sum510, kill612, kill419} {
		r, _ := ParseRecord([]byte(l))
		c.Add(r)
	}
	if len(c.Kills) != 3 {
		t.Fatalf("%d kills", len(c.Kills))
	}
	if s := c.Kills[0].Summary; s == nil || s.Pid != 412 {
		t.Errorf("first kill's summary %+v", s)
	}
	if c.Kills[1].Summary != nil || c.Kills[2].Summary != nil {
		t.Errorf("a summary of pid 412 given to another pid: %+v %+v", c.Kills[1].Summary, c.Kills[2].Summary)
	}
}
