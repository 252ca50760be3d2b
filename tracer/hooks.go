package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// KillHook chooses how oom_kill_process() is hooked.
type KillHook string

const (
	KillHookAuto   KillHook = "auto"   // fentry, else kprobe, else none
	KillHookFentry KillHook = "fentry" // fentry/fexit or fail
	KillHookKprobe KillHook = "kprobe" // kprobe/kretprobe or fail
	KillHookNone   KillHook = "none"   // mark_victim only
)

// MarkHook chooses how oom:mark_victim is hooked.
type MarkHook string

const (
	MarkHookAuto       MarkHook = "auto"       // tp_btf, else the classic tracepoint
	MarkHookTpBtf      MarkHook = "tp_btf"     // BTF-typed raw tracepoint or fail
	MarkHookTracepoint MarkHook = "tracepoint" // classic tracepoint or fail
)

// Hooks says what got attached and what the kernel refused, for the startup line.
type Hooks struct {
	Kill string // "fentry", "kprobe" or "" when oom_kill_process() is not hooked
	Mark string // "tp_btf" or "tracepoint"
	// MarkLayout is what the attached mark_victim hook gives, as the
	// kernel's BTF describes it (see MarkLayout).
	MarkLayout MarkLayout
	// Signal is "tp_btf" when signal:signal_generate is hooked: the OOM
	// killer's SIGKILLs tell real kills from marks without one, and reach
	// the marked task where the mark gives only its id. "" otherwise.
	Signal string
	// Candidates is how out_of_memory() and oom_badness() are hooked for
	// the kernel's candidate list ("fentry" or "kprobe", as oom_kill_process()
	// is), "" when they are not.
	Candidates string
	// AllocRefused lists the syscalls whose refusals are traced
	// (--alloc-refused): their sys_exit tracepoints attached.
	AllocRefused []string
	Refused      map[string]string // hook -> why it could not be used
}

// Attach is the mode events report.
func (h Hooks) Attach() Attach {
	switch h.Kill {
	case "fentry":
		return AttachFentry
	case "kprobe":
		return AttachKprobe
	}
	return AttachMarkVictimOnly
}

type attacher struct {
	spec  *ebpf.CollectionSpec
	maps  map[string]*ebpf.Map
	progs []*ebpf.Program
	names []string // progs' names in the object, for ProgramStats
	links []link.Link
	hooks Hooks
	btf   *btf.Cache // shared by the loads; dropped once attached

	detached sync.Once
}

// loadProgram loads one program of the object, sharing the already created
// maps. Programs are loaded one by one because a kernel may refuse some (the
// CI host refuses fentry) and the rest must still load.
func (a *attacher) loadProgram(name string) (*ebpf.Program, error) {
	spec := a.spec.Copy()
	for n := range spec.Programs {
		if n != name {
			delete(spec.Programs, n)
		}
	}
	if a.btf == nil {
		// Decoding the kernel's BTF is most of a load's cost (~40 ms
		// on 6.18): once for all the programs (and the layout checks),
		// not once each.
		a.btf = btf.NewCache()
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: a.maps, Cache: a.btf})
	if errors.Is(err, unix.EPERM) && strings.HasPrefix(name, "f") {
		// The library's hint (MEMLOCK) does not apply: the limit is raised
		// before loading. A kernel that refuses trampolines says EPERM.
		return nil, fmt.Errorf("loading %s: the kernel refused the BPF trampoline (EPERM; lockdown or a security policy can forbid fentry/fexit)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	defer coll.Close()
	prog := coll.DetachProgram(name)
	a.progs = append(a.progs, prog)
	a.names = append(a.names, name)
	return prog, nil
}

// pair loads and attaches an exit program then its entry program: exit first,
// so no decision can begin without its end being seen.
func (a *attacher) pair(exitName, entryName string, attach func(exit, entry *ebpf.Program) ([]link.Link, error)) error {
	exit, err := a.loadProgram(exitName)
	if err != nil {
		return err
	}
	entry, err := a.loadProgram(entryName)
	if err != nil {
		return err
	}
	links, err := attach(exit, entry)
	if err != nil {
		return err
	}
	a.links = append(a.links, links...)
	return nil
}

func (a *attacher) attachFentry() error {
	return a.pair("fexit_oom_kill_process", "fentry_oom_kill_process", func(exit, entry *ebpf.Program) ([]link.Link, error) {
		x, err := link.AttachTracing(link.TracingOptions{Program: exit})
		if err != nil {
			return nil, fmt.Errorf("attaching fexit/oom_kill_process: %w", err)
		}
		e, err := link.AttachTracing(link.TracingOptions{Program: entry})
		if err != nil {
			x.Close()
			return nil, fmt.Errorf("attaching fentry/oom_kill_process: %w", err)
		}
		return []link.Link{x, e}, nil
	})
}

func (a *attacher) attachKprobe() error {
	// Without the kprobe PMU the library falls back to tracefs and reports
	// that tracefs is missing, which hides the real cause.
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err != nil {
		if _, err := os.Stat("/sys/kernel/tracing/kprobe_events"); err != nil {
			return errors.New("no kprobe support: no kprobe PMU in /sys/bus/event_source/devices and no tracefs kprobe_events (kernel built without CONFIG_KPROBES, or tracefs not mounted)")
		}
	}
	return a.pair("kretprobe_oom_kill_process", "kprobe_oom_kill_process", func(exit, entry *ebpf.Program) ([]link.Link, error) {
		x, err := link.Kretprobe("oom_kill_process", exit, nil)
		if err != nil {
			return nil, fmt.Errorf("attaching kretprobe/oom_kill_process: %w", err)
		}
		e, err := link.Kprobe("oom_kill_process", entry, nil)
		if err != nil {
			x.Close()
			return nil, fmt.Errorf("attaching kprobe/oom_kill_process: %w", err)
		}
		return []link.Link{x, e}, nil
	})
}

func (a *attacher) attachTpBtf() error {
	layout, err := a.tpBtfLayout()
	if err != nil {
		return err
	}
	name := "tp_btf_mark_victim"
	if layout == MarkLayoutPid {
		name = "tp_btf_mark_victim_pid"
	}
	prog, err := a.loadProgram(name)
	if err != nil {
		return err
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attaching tp_btf/mark_victim: %w", err)
	}
	a.links = append(a.links, l)
	a.hooks.MarkLayout = layout
	return nil
}

func (a *attacher) attachTracepoint() error {
	prog, err := a.loadProgram("tracepoint_mark_victim")
	if err != nil {
		return err
	}
	l, err := link.Tracepoint("oom", "mark_victim", prog, nil)
	if err != nil {
		return fmt.Errorf("attaching tracepoint/oom/mark_victim (is tracefs mounted?): %w", err)
	}
	a.links = append(a.links, l)
	a.hooks.MarkLayout = a.tracepointLayout()
	return nil
}

// attachSignal hooks signal:signal_generate, before the OOM hooks so that
// no decision begins unseen by it. The OOM killer's SIGKILLs then count each
// decision's kills exactly and let the BPF side read a victim that a mark
// names by id alone. Best effort: without it the join falls back to the
// victim's exit flags and the marks' process identity.
func (a *attacher) attachSignal() {
	err := func() error {
		prog, err := a.loadProgram("tp_btf_signal_generate")
		if err != nil {
			return err
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return fmt.Errorf("attaching tp_btf/signal_generate: %w", err)
		}
		a.links = append(a.links, l)
		return nil
	}()
	if err != nil {
		a.hooks.Refused["signal_generate"] = err.Error()
		return
	}
	a.hooks.Signal = "tp_btf"
}

// attachCandidates hooks out_of_memory() and oom_badness() the way
// oom_kill_process() was hooked (how is "fentry" or "kprobe"). Best effort:
// a refusal costs the candidate list (the daemon falls back to its model),
// never the kills. Exits attach before entries, so no call is seen begun
// and not ended; oom_badness() before out_of_memory(), so that a call seen
// begun has its scores.
func (a *attacher) attachCandidates(how string) {
	err := func() error {
		spec, err := a.kernelBTF()
		if err != nil {
			return err
		}
		if err := badnessPrototype(spec); err != nil {
			return err
		}
		if how == "fentry" {
			return a.attachTracing("fexit_oom_badness", "fexit_out_of_memory", "fentry_out_of_memory")
		}
		return a.attachProbes(
			probe{"kretprobe_oom_badness", "oom_badness", true},
			probe{"kprobe_oom_badness", "oom_badness", false},
			probe{"kretprobe_out_of_memory", "out_of_memory", true},
			probe{"kprobe_out_of_memory", "out_of_memory", false},
		)
	}()
	if err != nil {
		a.hooks.Refused["candidates"] = err.Error()
		return
	}
	a.hooks.Candidates = how
}

// attachTracing loads and attaches fentry/fexit programs in order; on
// error the ones attached stay attached (the caller's close detaches them).
func (a *attacher) attachTracing(names ...string) error {
	for _, name := range names {
		prog, err := a.loadProgram(name)
		if err != nil {
			return err
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return fmt.Errorf("attaching %s: %w", name, err)
		}
		a.links = append(a.links, l)
	}
	return nil
}

type probe struct {
	prog, symbol string
	ret          bool
}

// attachProbes loads and attaches kprobes and kretprobes in order.
func (a *attacher) attachProbes(probes ...probe) error {
	for _, p := range probes {
		prog, err := a.loadProgram(p.prog)
		if err != nil {
			return err
		}
		attach := link.Kprobe
		if p.ret {
			attach = link.Kretprobe
		}
		l, err := attach(p.symbol, prog, nil)
		if err != nil {
			return fmt.Errorf("attaching %s: %w", p.prog, err)
		}
		a.links = append(a.links, l)
	}
	return nil
}

// attachKill hooks oom_kill_process() as the mode asks. In auto mode a refusal
// is recorded, not fatal: the tracer can run on mark_victim alone.
func (a *attacher) attachKill(mode KillHook) error {
	try := func(name string, f func() error) bool {
		if err := f(); err != nil {
			a.hooks.Refused[name] = err.Error()
			return false
		}
		a.hooks.Kill = name
		return true
	}
	switch mode {
	case KillHookNone:
		return nil
	case KillHookFentry:
		if !try("fentry", a.attachFentry) {
			return fmt.Errorf("hooking oom_kill_process with fentry: %s", a.hooks.Refused["fentry"])
		}
	case KillHookKprobe:
		if !try("kprobe", a.attachKprobe) {
			return fmt.Errorf("hooking oom_kill_process with kprobe: %s", a.hooks.Refused["kprobe"])
		}
	case KillHookAuto, "":
		_ = try("fentry", a.attachFentry) || try("kprobe", a.attachKprobe)
	default:
		return fmt.Errorf("unknown kill hook %q", mode)
	}
	return nil
}

// attachMark hooks oom:mark_victim, which every mode needs.
func (a *attacher) attachMark(mode MarkHook) error {
	var order []string
	switch mode {
	case MarkHookAuto, "":
		order = []string{"tp_btf", "tracepoint"}
	case MarkHookTpBtf:
		order = []string{"tp_btf"}
	case MarkHookTracepoint:
		order = []string{"tracepoint"}
	default:
		return fmt.Errorf("unknown mark hook %q", mode)
	}
	for _, name := range order {
		f := a.attachTpBtf
		if name == "tracepoint" {
			f = a.attachTracepoint
		}
		if err := f(); err != nil {
			a.hooks.Refused[name] = err.Error()
			continue
		}
		a.hooks.Mark = name
		return nil
	}
	return fmt.Errorf("no OOM hook could attach: oom:mark_victim refused (%v)", a.hooks.Refused)
}

// detach closes every link, last attached first: the programs stop running,
// so no record comes after. Safe to call more than once, from any goroutine.
func (a *attacher) detach() {
	a.detached.Do(func() {
		for i := len(a.links) - 1; i >= 0; i-- {
			a.links[i].Close()
		}
	})
}

func (a *attacher) close() {
	a.detach()
	for _, p := range a.progs {
		p.Close()
	}
	a.progs, a.names = nil, nil
}
