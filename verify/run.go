package verify

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/oomtrace/oomtrace/enrich"
	"github.com/oomtrace/oomtrace/enrich/cgroups"
	"github.com/oomtrace/oomtrace/internal/workload"
	"github.com/oomtrace/oomtrace/kernel/badness"
	"github.com/oomtrace/oomtrace/tracer"
)

// Options configure a run; the zero value runs the real model with the best hooks.
type Options struct {
	Tracer tracer.Config
	Model  Model // nil: badness.Score
	// Only, when not empty, runs just the scenarios with these names (the
	// suite-wide checks always run).
	Only []string
	// Progress, when set, hears each result as it is decided.
	Progress func(Result)
	// GlobalOOM allows the scenarios that run the whole machine out of
	// memory. The kernel then kills whatever it picks besides the scenario's
	// processes: only on a disposable machine (a VM booted for it).
	GlobalOOM bool
}

// Run carries out the scenarios under a fresh tracer. Every scratch cgroup
// and process it made is gone when it returns, also when ctx is cancelled
// (Ctrl-C). The error is for a suite that could not run at all.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	if opts.Model == nil {
		opts.Model = badness.Score
	}
	h, err := workload.FindHierarchy()
	if err != nil {
		return nil, err
	}
	tr, err := tracer.Open(opts.Tracer)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	ch, err := cgroups.FindMemoryHierarchy()
	if err != nil {
		return nil, err
	}
	e := enrich.New(&ch, nil)
	parent, err := workload.CreateCgroup(h, nil, fmt.Sprintf("verify-%d", os.Getpid()), 0)
	if err != nil {
		return nil, err
	}
	defer parent.Remove()
	if err := e.Prime(); err != nil {
		return nil, err
	}

	s := &session{ctx: ctx, h: h, parent: parent, model: opts.Model, enricher: e, hooks: tr.Hooks(), globalOOM: opts.GlobalOOM}
	traceCtx, stopTrace := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.Run(traceCtx, s.record, func(error) {}) }()
	defer func() { stopTrace(); <-done }()

	vmBefore, err := workload.VMStatOOMKills()
	if err != nil {
		return nil, err
	}
	var results []Result
	report := func(r Result) {
		results = append(results, r)
		if opts.Progress != nil {
			opts.Progress(r)
		}
	}
	for _, sc := range scenarios() {
		if !selected(opts.Only, sc.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r, err := sc.run(s)
		s.cleanup()
		if err != nil {
			r = Result{Scenario: sc.name, Verdict: Fail, Reason: err.Error()}
			if errors.Is(ctx.Err(), context.Canceled) {
				break
			}
		}
		if r.Scenario == "" {
			r.Scenario = sc.name
		}
		report(r)
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("interrupted: %w", err)
	}
	report(s.scoreCheck())
	report(s.candidateCheck())
	vmAfter, err := workload.VMStatOOMKills()
	if err != nil {
		return results, err
	}
	report(s.countCheck(vmAfter - vmBefore))
	return results, nil
}

func selected(only []string, name string) bool {
	if len(only) == 0 {
		return true
	}
	for _, o := range only {
		if o == name {
			return true
		}
	}
	return false
}

func (s *session) scoreCheck() Result {
	r := Result{Scenario: "kernel_score_equals_model", Expected: "oc->chosen_points equals the model's oom_badness() of the captured counters, for every kill"}
	if s.hooks.Kill == "" && s.hooks.Signal == "" {
		// Without either hook the kernel's decision cannot be found: the
		// stack is read at a mark only when its SIGKILL shows it a kill.
		r.Verdict, r.Reason = NotApplicable, "neither oom_kill_process() nor signal_generate is hooked on this kernel, so the kernel's score is not seen"
		return r
	}
	r.Observed = fmt.Sprintf("%d of %d kills match", s.scoreSeen-len(s.scoreBad), s.scoreSeen)
	r.Numbers = map[string]any{"kills_scored": s.scoreSeen, "mismatches": s.scoreBad}
	r.Verdict = Pass
	if s.scoreSeen == 0 || len(s.scoreBad) > 0 {
		r.Verdict, r.Reason = Fail, "a kernel score differs from the model, or no kill was scored"
	}
	return r
}

func (s *session) candidateCheck() Result {
	r := Result{Scenario: "candidate_scores_equal_model", Expected: "every task the kernel scored in a decision (oom_badness() hooked) scores as the model says for its counters"}
	switch {
	case s.hooks.Candidates == "":
		r.Verdict, r.Reason = NotApplicable, "out_of_memory() and oom_badness() are not hooked on this kernel (mark_victim mode, or refused)"
		return r
	case s.candKills == 0:
		r.Verdict, r.Reason = NotApplicable, "the hooks saw no oom_badness() call of the OOM killer: this kernel inlines it"
		return r
	}
	r.Observed = fmt.Sprintf("%d of %d candidates in %d decisions match", s.candChecked-len(s.candBad), s.candChecked, s.candKills)
	r.Numbers = map[string]any{"decisions": s.candKills, "candidates": s.candChecked, "mismatches": s.candBad}
	r.Verdict = Pass
	if s.candChecked == 0 || len(s.candBad) > 0 {
		r.Verdict, r.Reason = Fail, "a candidate's kernel score differs from the model, or none was checked"
	}
	return r
}

func (s *session) countCheck(vmstat uint64) Result {
	s.mu.Lock()
	var total uint64
	for _, k := range s.kills {
		total += uint64(k.Kills())
	}
	s.mu.Unlock()
	r := Result{
		Scenario: "tracer_count_equals_kernel",
		Expected: "every kill seen once: the tracer's count equals the cgroups' oom_kill counters and /proc/vmstat",
		Observed: fmt.Sprintf("tracer %d in the scenario cgroups (kernel: %d); tracer %d in all (vmstat: %d)", s.traced, s.counted, total, vmstat),
		Numbers:  map[string]any{"traced": s.traced, "counted": s.counted, "traced_total": total, "vmstat": vmstat},
		Verdict:  Pass,
	}
	if s.excused > 0 {
		r.Observed += fmt.Sprintf("; %d group re-kills the kernel counted without marking anyone (mark_victim mode cannot see them) added to the tracer's side", s.excused)
		r.Numbers["excused_rekills"] = s.excused
		total += s.excused
	}
	if s.traced+s.excused != s.counted || total != vmstat || s.counted == 0 {
		r.Verdict, r.Reason = Fail, "counts differ, or no kill happened"
	}
	return r
}
