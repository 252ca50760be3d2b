package verify

import (
	"testing"

	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
)

func TestPredict(t *testing.T) {
	cands := []candidate{
		{Name: "small", Pid: 1, Model: 100},
		{Name: "large", Pid: 2, Model: 300},
		{Name: "immune", Pid: 3, Model: badness.Unkillable},
	}
	if p, ok := predict(cands); !ok || p.Name != "large" {
		t.Errorf("predict = %+v, %v", p, ok)
	}
	if _, ok := predict(cands[2:]); ok {
		t.Error("an unkillable process was predicted")
	}
}

func TestJudgeChoice(t *testing.T) {
	cands := []candidate{{Name: "small", Pid: 1, Model: 100}, {Name: "large", Pid: 2, Model: 300}}
	kill := func(pid uint32) tracer.Kill {
		return tracer.Kill{Victim: tracer.Task{Process: tracer.Process{Pid: pid}}}
	}
	for _, tc := range []struct {
		name            string
		kills           []tracer.Kill
		traced, counted uint64
		want            string
	}{
		{"as predicted", []tracer.Kill{kill(2)}, 1, 1, Pass},
		{"another victim", []tracer.Kill{kill(1)}, 1, 1, Fail},
		{"a later second kill is not the prediction's", []tracer.Kill{kill(2), kill(1)}, 2, 2, Pass},
		{"counts differ", []tracer.Kill{kill(2)}, 1, 2, Fail},
		{"no kill", nil, 0, 0, Fail},
	} {
		r := judgeChoice(Result{}, cands, tc.kills, tc.traced, tc.counted, nil)
		if r.Verdict != tc.want {
			t.Errorf("%s: verdict %s (%s), want %s", tc.name, r.Verdict, r.Reason, tc.want)
		}
	}
}
