// SPDX-License-Identifier: GPL-2.0
/*
 * oomtrace: one record per OOM decision and per victim marking.
 *
 * Hooks (userspace attaches what the kernel allows, best first):
 *  - oom_kill_process() entry (fentry, else kprobe): the decision. Gives the
 *    chosen task, the kernel's score and the OOM's scope. Serialised by the
 *    kernel's oom_lock, so decisions never overlap.
 *  - oom_kill_process() exit (fexit, else kretprobe): the decision is over.
 *  - oom:mark_victim (tp_btf, else the classic tracepoint): a task marked as
 *    an OOM victim. Fires for every process a decision kills (group kills
 *    included), but also for dying threads that enter the OOM path and are
 *    marked without a new kill, so alone it over-counts.
 *  - signal:signal_generate (tp_btf), only where the mark_victim hook gives
 *    no task (the pre-2024 tracepoint passes a pid; the classic tracepoint's
 *    record never holds a task): __oom_kill_process() sends SIGKILL to the
 *    victim just before marking it, from the same thread, so the signal's
 *    target is the marked task and can be read in full.
 *  - out_of_memory() entry and exit, and oom_badness() exit (fentry/fexit,
 *    else kprobe/kretprobe, as oom_kill_process() is hooked): the tasks the
 *    OOM killer weighed, each with the score the kernel computed, kept best
 *    first in the oom_calls map and sent before the decision's begin record
 *    (RECORD_CANDIDATES), or on their own when it chose nobody
 *    (RECORD_NO_KILL). Calls of oom_badness() on other threads (/proc's
 *    oom_score) are not candidates.
 *  - the deciding thread's kernel stack (bpf_get_stack()), taken in the
 *    oom_kill_process() entry hook, or in mark_victim's outside any hooked
 *    decision, and sent just before that record (RECORD_STACK).
 *  - with alloc_refused, the exit tracepoints of fork, vfork, clone,
 *    clone3, mmap, mremap and brk: the memory requests the kernel refused
 *    (RECORD_ALLOC_REFUSED, at the end).
 * Each mark_victim carries the sequence number of the decision running on
 * the same thread, if any, so userspace can join them without guessing.
 *
 * Nothing here may need a verifier newer than 5.8's (the ring buffer and
 * bpf_ktime_get_boot_ns() set that floor): no atomic fetch instructions
 * (5.12), no bpf_loop (5.17), no kfuncs.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define TASK_COMM_LEN 16

enum record_kind {
	RECORD_KILL_BEGIN = 1, /* oom_kill_process() entered */
	RECORD_MARK = 2,       /* mark_victim fired */
	RECORD_KILL_END = 3,   /* oom_kill_process() returned */
	/* The OOM killer's SIGKILL to a process it had already marked (the
	 * memory.oom.group scan kills the chosen victim again): counted by the
	 * kernel, marked by nobody. Sent only outside a hooked decision, whose
	 * end record counts such kills itself. */
	RECORD_REKILL = 4,
	/* The tasks out_of_memory() weighed before a kill (struct
	 * candidates_record), sent just before the decision's KILL_BEGIN. */
	RECORD_CANDIDATES = 5,
	/* out_of_memory() chose nobody: every task unkillable, or none. */
	RECORD_NO_KILL = 6,
	/* A memory request the kernel refused with ENOMEM (struct
	 * alloc_record): fork-like calls, mmap, mremap, brk. */
	RECORD_ALLOC_REFUSED = 7,
	/* The deciding thread's kernel stack (struct stack_record), sent just
	 * before its KILL_BEGIN, or before a MARK outside any hooked decision
	 * (mark_victim mode: the marking thread is the deciding one). */
	RECORD_STACK = 8,
};

/* Where a record's OOM fields (chosen_points ... constraint) come from. */
enum scope_source {
	SCOPE_NONE = 0,
	SCOPE_HOOK = 1,  /* oom_kill_process()'s argument (KILL_BEGIN) */
	SCOPE_STACK = 2, /* the struct oom_control found on the deciding thread's stack (MARK) */
};

/* A decision in progress, by the thread running it. */
struct decision {
	u64 seq;
	u64 memcg;                /* oc->memcg, pinned by the kernel for the OOM */
	u64 memcg_kills;          /* its oom_kill event count at the start */
	/* Kills the kernel counted in this decision: one per SIGKILL that
	 * __oom_kill_process() sent (signal_generate); the task_will_free_mem()
	 * shortcuts send none. */
	u64 last_mm;              /* the last counted victim's mm and process: */
	u32 last_tgid;            /* a SIGKILL to another process sharing that mm is not a kill */
	u32 kills;
};

enum task_flags {
	/* The victim was already exiting when chosen: oom_kill_process() then
	 * takes its task_will_free_mem() shortcut and kills nothing. */
	TASK_EXITING = 1 << 0,
	/* Only the pid is known (classic tracepoint, victim is not current). */
	TASK_PARTIAL = 1 << 1,
	/* signal->oom_flag_origin: oom_task_origin(), chosen before anyone else. */
	TASK_OOM_ORIGIN = 1 << 2,
	/* The kernel's mm counters have a layout this program does not know:
	 * the page counts are unknown, not zero. */
	TASK_PAGES_UNKNOWN = 1 << 3,
	/* No mm->pgtables_bytes on this kernel. */
	TASK_PGTABLES_UNKNOWN = 1 << 4,
	/* No memory controller (or no cgroups) in this kernel's BTF. */
	TASK_CGROUP_UNKNOWN = 1 << 5,
	/* The page counts came from the classic tracepoint's record, in kB
	 * (the 2024 fields), not from the mm: userspace converts. */
	TASK_PAGES_KB = 1 << 6,
	/* The OOM killer's SIGKILL to this task was seen on the marking thread
	 * just before the mark: a real kill, not a shortcut mark. */
	TASK_OOM_SIGKILLED = 1 << 7,
	/* That SIGKILL went to a process already marked: a RECORD_REKILL
	 * reported the kill, this mark (another of its threads) adds none. */
	TASK_REKILLED = 1 << 8,
};

struct task_info {
	u64 start_time;      /* group leader's start, ns since boot: with pid, a process identity */
	u64 memcg_id;        /* cgroup id of the memory controller's css */
	u64 dfl_cgroup_id;   /* cgroup id on the default (v2) hierarchy */
	u64 anon_pages;
	u64 file_pages;
	u64 shmem_pages;
	u64 swap_pages;
	u64 pgtables_bytes;
	u32 pid;             /* tgid */
	u32 tid;
	u32 uid;
	s32 oom_score_adj;
	u32 flags;           /* enum task_flags */
	u8 comm[TASK_COMM_LEN];
};

struct record {
	u64 boot_ns;         /* bpf_ktime_get_boot_ns() */
	u64 seq;             /* decision number; 0 on a mark outside any decision */
	u32 kind;            /* enum record_kind */
	u32 trigger_pid;
	u32 trigger_tid;
	u8 trigger_comm[TASK_COMM_LEN];
	struct task_info task; /* KILL_BEGIN: oc->chosen; MARK: the marked task */
	/* KILL_BEGIN only */
	s64 chosen_points;
	u64 totalpages;
	u64 oom_memcg_id;    /* 0 for a global OOM */
	u32 gfp_mask;
	s32 order;
	u32 constraint;
	u32 scope_from;      /* enum scope_source: where the fields above come from */
	/* KILL_END only: how much the OOM memcg's oom_kill counter grew during
	 * the decision; 0 for a global OOM. */
	u32 memcg_kills;
	/* KILL_END only: the kills the decision's SIGKILLs show; meaningful
	 * where signal_generate is hooked (userspace attaches it first). */
	u32 kills;
};

/* One task oom_badness() scored on the deciding thread. */
struct candidate {
	struct task_info task;
	s64 points;          /* what oom_badness() returned: LONG_MIN when unkillable */
	u32 scanned;         /* its place in the scan, from 1: on a tie the later one wins */
	u32 pad;
};

#define MAX_CANDIDATES 64

/* RECORD_CANDIDATES and RECORD_NO_KILL; the header is struct record's. Sent
 * with the n candidates kept, so its size varies. */
struct candidates_record {
	u64 boot_ns;
	u64 seq;             /* the kill decision that follows; 0 for NO_KILL */
	u32 kind;
	u32 scored;          /* oom_badness() calls in this out_of_memory() */
	u32 unkillable;      /* of which returned LONG_MIN */
	u32 n;               /* candidates kept: the best by score, at most candidates_max */
	u32 trigger_pid;
	u32 trigger_tid;
	u8 trigger_comm[TASK_COMM_LEN];
	/* The scope, as struct record's (NO_KILL: read at out_of_memory()'s exit). */
	u64 totalpages;
	u64 oom_memcg_id;
	u32 gfp_mask;
	s32 order;
	u32 constraint;
	u32 pad;
	struct candidate c[MAX_CANDIDATES]; /* unordered: userspace ranks them */
};

#define MAX_STACK_DEPTH 32

/* RECORD_STACK; the header is struct record's. */
struct stack_record {
	u64 boot_ns;
	u64 seq;             /* the decision whose KILL_BEGIN follows; 0 before a MARK */
	u32 kind;
	u32 tid;             /* the deciding thread */
	s32 len;             /* bytes of ips bpf_get_stack() filled, or its error */
	u32 pad;
	/* arm64's kprobe at a function's entry: the link register, the
	 * caller's return address, which the frame-pointer walk from the
	 * probe's registers skips (no frame record yet); 0 elsewhere. */
	u64 entry_lr;
	u64 ips[MAX_STACK_DEPTH]; /* return addresses, innermost first */
};

const struct stack_record *unused_stack_record __attribute__((unused));

/* Force the record types into BTF so bpf2go can generate Go twins. */
const struct candidates_record *unused_candidates __attribute__((unused));
const struct record *unused_record __attribute__((unused));
const enum record_kind *unused_kind __attribute__((unused));
const enum task_flags *unused_flags __attribute__((unused));
const enum scope_source *unused_scope __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Records dropped because the ring buffer was full: index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* Thread id running oom_kill_process() -> its decision. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, struct decision);
} running SEC(".maps");

/* The kernel's last SIGKILL (SEND_SIG_PRIV) sent by a thread. */
struct kill_signal {
	u64 task;   /* the target */
	u32 rekill; /* the target had been marked already */
	u32 pad;
};

/* Sending thread id -> its last kernel SIGKILL, for the mark that follows it.
 * LRU: kernel SIGKILLs that no mark follows (a process sharing the victim's
 * mm, a pid namespace torn down) age out by themselves. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct kill_signal);
} kill_signals SEC(".maps");


/* How many candidates a decision keeps (--candidates), at most
 * MAX_CANDIDATES; set before load. */
const volatile u32 candidates_max = 10;

/* The out_of_memory() call in progress. One: callers hold oom_lock. */
struct oom_call {
	u32 tid;             /* its thread; 0 when none runs */
	u32 pad;
	u64 oc;              /* kretprobe: its struct oom_control */
	u64 badness_task;    /* kretprobe: the task of the oom_badness() call running */
	u32 weakest;         /* scratch: the weakest candidate kept, see on_badness() */
	u32 pad2;
	struct candidates_record rec; /* sent from here as it is */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct oom_call);
} oom_calls SEC(".maps");

/* Written only under the kernel's oom_lock (decisions never overlap), so a
 * plain increment is exact and needs no atomic fetch, which verifiers before
 * 5.12 refuse ("BPF_STX uses reserved fields"). */
u64 next_seq = 0;

static __always_inline u64 cgroup_id(struct cgroup *cgrp)
{
	if (!cgrp || !bpf_core_field_exists(cgrp->kn))
		return 0;
	return BPF_CORE_READ(cgrp, kn, id);
}

static __always_inline u64 memcg_cgroup_id(struct css_set *cset)
{
	struct cgroup_subsys_state *css = 0;
	struct cgroup_subsys_state **subsys;
	int id;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0; /* kernel built without memory cgroups */
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (id < 0 || id >= 16)
		return 0;
	if (!bpf_core_field_exists(cset->subsys))
		return 0;
	subsys = __builtin_preserve_access_index(&cset->subsys[0]);
	bpf_probe_read_kernel(&css, sizeof(css), subsys + id);
	if (!css)
		return 0;
	return cgroup_id(BPF_CORE_READ(css, cgroup));
}

/* get_mm_counter(): the kernel never reports a negative count. */
static __always_inline u64 positive(s64 v)
{
	return v < 0 ? 0 : v;
}

static __always_inline void read_mm(struct mm_struct *mm, struct task_info *ti)
{
	struct mm_struct___pre62 *old = (void *)mm;

	if (!mm)
		return;
	if (bpf_core_type_exists(struct mm_rss_stat) && bpf_core_field_exists(old->rss_stat.count)) {
		/* Before 6.2: atomic counters in struct mm_rss_stat. */
		ti->file_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES].counter));
		ti->anon_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES].counter));
		ti->swap_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_SWAPENTS].counter));
		ti->shmem_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES].counter));
	} else if (bpf_core_field_exists(mm->rss_stat[0].count)) {
		/* 6.2+: percpu_counter; the OOM killer reads the approximate
		 * .count (percpu_counter_read_positive), and so do we. */
		ti->file_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_FILEPAGES].count));
		ti->anon_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count));
		ti->swap_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_SWAPENTS].count));
		ti->shmem_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_SHMEMPAGES].count));
	} else {
		/* Neither layout (an upstream RFC replaces rss_stat with a
		 * counter tree): say so rather than report zeros. */
		ti->flags |= TASK_PAGES_UNKNOWN;
	}
	if (bpf_core_field_exists(mm->pgtables_bytes))
		ti->pgtables_bytes = positive(BPF_CORE_READ(mm, pgtables_bytes.counter));
	else
		ti->flags |= TASK_PGTABLES_UNKNOWN;
}

#define MAX_THREADS_WALKED 64

/* find_lock_task_mm() without the lock: the task's mm, or that of the first
 * of its threads that still has one (a group leader that exited while its
 * threads live on has none; the kernel scores and kills through that thread). */
static __always_inline struct mm_struct *task_mm(struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct signal_struct *signal;
	struct list_head *head, *pos;
	long off;

	if (mm || !bpf_core_field_exists(task->thread_node) ||
	    !bpf_core_field_exists(struct signal_struct, thread_head))
		return mm;
	signal = BPF_CORE_READ(task, signal);
	if (!signal)
		return 0;
	off = bpf_core_field_offset(struct task_struct, thread_node);
	head = __builtin_preserve_access_index(&signal->thread_head);
	pos = BPF_CORE_READ(signal, thread_head.next);
	for (int i = 0; i < MAX_THREADS_WALKED; i++) {
		if (!pos || pos == head)
			break;
		mm = BPF_CORE_READ((struct task_struct *)((void *)pos - off), mm);
		if (mm)
			return mm;
		pos = BPF_CORE_READ(pos, next);
	}
	return 0;
}

static __always_inline void read_task(struct task_struct *task, struct task_info *ti)
{
	struct signal_struct *signal = BPF_CORE_READ(task, signal);
	struct css_set *cset = 0;
	u32 task_flags = BPF_CORE_READ(task, flags);

	if (bpf_core_field_exists(task->cgroups))
		cset = BPF_CORE_READ(task, cgroups);

	ti->pid = BPF_CORE_READ(task, tgid);
	ti->tid = BPF_CORE_READ(task, pid);
	ti->start_time = BPF_CORE_READ(task, group_leader, start_time);
	ti->uid = BPF_CORE_READ(task, real_cred, uid.val);
	ti->oom_score_adj = BPF_CORE_READ(signal, oom_score_adj);
	BPF_CORE_READ_INTO(&ti->comm, task, comm);
	read_mm(task_mm(task), ti);
	if (cset) {
		ti->memcg_id = memcg_cgroup_id(cset);
		ti->dfl_cgroup_id = cgroup_id(BPF_CORE_READ(cset, dfl_cgrp));
	}
	if (!ti->memcg_id)
		ti->flags |= TASK_CGROUP_UNKNOWN;
	if (bpf_core_field_exists(signal->oom_flag_origin) && BPF_CORE_READ(signal, oom_flag_origin))
		ti->flags |= TASK_OOM_ORIGIN;
	/* __task_will_free_mem(): a group exit, or the last thread exiting. */
	if ((BPF_CORE_READ(signal, flags) & SIGNAL_GROUP_EXIT) ||
	    ((task_flags & PF_EXITING) && BPF_CORE_READ(signal, nr_threads) <= 1))
		ti->flags |= TASK_EXITING;
}

static __always_inline struct record *reserve(u32 kind)
{
	struct record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	u32 zero = 0;

	if (!r) {
		u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->boot_ns = bpf_ktime_get_boot_ns();
	u64 id = bpf_get_current_pid_tgid();
	r->trigger_pid = id >> 32;
	r->trigger_tid = (u32)id;
	bpf_get_current_comm(&r->trigger_comm, sizeof(r->trigger_comm));
	return r;
}

/* memory.events oom_kill of a memcg, as the kernel counts it. */
static __always_inline u64 memcg_oom_kills(struct mem_cgroup *memcg)
{
	int idx;

	if (!memcg || !bpf_core_field_exists(memcg->memory_events) ||
	    !bpf_core_enum_value_exists(enum memcg_memory_event, MEMCG_OOM_KILL))
		return 0;
	idx = bpf_core_enum_value(enum memcg_memory_event, MEMCG_OOM_KILL);
	if (idx < 0 || idx >= 9)
		return 0;
	atomic_long_t *events = __builtin_preserve_access_index(&memcg->memory_events[0]);
	s64 n = 0;
	bpf_probe_read_kernel(&n, sizeof(n), &events[idx].counter);
	return positive(n);
}

/* The decision's fields, from oc, wherever it was found. */
static __always_inline void fill_scope(struct record *r, struct oom_control *oc, u32 from)
{
	struct mem_cgroup *memcg = BPF_CORE_READ(oc, memcg);

	r->scope_from = from;
	r->chosen_points = BPF_CORE_READ(oc, chosen_points);
	r->totalpages = BPF_CORE_READ(oc, totalpages);
	r->gfp_mask = BPF_CORE_READ(oc, gfp_mask);
	r->order = BPF_CORE_READ(oc, order);
	r->constraint = BPF_CORE_READ(oc, constraint);
	if (memcg && bpf_core_field_exists(memcg->css))
		r->oom_memcg_id = cgroup_id(BPF_CORE_READ(memcg, css.cgroup));
}

/* The out_of_memory() call the current thread runs, if any. */
static __always_inline struct oom_call *this_oom_call(void)
{
	u32 zero = 0;
	struct oom_call *c = bpf_map_lookup_elem(&oom_calls, &zero);

	if (!c || !c->tid || c->tid != (u32)bpf_get_current_pid_tgid())
		return 0;
	return c;
}

static __always_inline int on_oom_begin(struct oom_control *oc)
{
	u32 zero = 0;
	struct oom_call *c = bpf_map_lookup_elem(&oom_calls, &zero);

	if (!c)
		return 0;
	/* A call whose exit was missed (a kretprobe out of instances) is
	 * simply replaced: callers hold oom_lock, so it is over. */
	c->tid = (u32)bpf_get_current_pid_tgid();
	c->oc = (u64)oc;
	c->badness_task = 0;
	c->rec.seq = 0;
	c->rec.scored = 0;
	c->rec.unkillable = 0;
	c->rec.n = 0;
	return 0;
}

#define LONG_MIN (-0x7fffffffffffffffLL - 1)

/* oom_badness() returned points for p on the deciding thread: keep p if
 * it is among the candidates_max best so far. The weakest kept is sought
 * through map memory (c->weakest), which the verifier does not track, so
 * the loop does not fork its state per candidate. */
static __always_inline int on_badness(struct task_struct *p, s64 points)
{
	struct oom_call *c = this_oom_call();
	struct candidate *e;
	u32 max = candidates_max, n, slot;

	if (!c || !p)
		return 0;
	c->rec.scored++;
	if (points == LONG_MIN)
		c->rec.unkillable++;
	if (max > MAX_CANDIDATES)
		max = MAX_CANDIDATES;
	if (max == 0)
		return 0;
	n = c->rec.n;
	if (n < max) {
		slot = n;
		c->rec.n = n + 1;
	} else {
		/* The weakest: the lowest score, on a tie the earliest scanned
		 * (the kernel keeps the later of two equal scores). */
		c->weakest = 0;
		for (u32 i = 1; i < MAX_CANDIDATES && i < max; i++) {
			struct candidate *w = &c->rec.c[c->weakest & (MAX_CANDIDATES - 1)];
			struct candidate *x = &c->rec.c[i];

			if (x->points < w->points || (x->points == w->points && x->scanned < w->scanned))
				c->weakest = i;
		}
		slot = c->weakest & (MAX_CANDIDATES - 1);
		/* Scanned last, p beats an equal score. */
		if (points < c->rec.c[slot].points)
			return 0;
	}
	e = &c->rec.c[slot & (MAX_CANDIDATES - 1)];
	__builtin_memset(&e->task, 0, sizeof(e->task));
	read_task(p, &e->task);
	e->points = points;
	e->scanned = c->rec.scored;
	return 0;
}

/* Sends the call's candidates as a record of the given kind, sized to the
 * candidates kept. oc gives the scope. */
static __always_inline void send_candidates(struct oom_call *c, u32 kind, struct oom_control *oc)
{
	struct candidates_record *r = &c->rec;
	struct mem_cgroup *memcg = BPF_CORE_READ(oc, memcg);
	u64 id = bpf_get_current_pid_tgid();
	u32 n = r->n, zero = 0;

	r->kind = kind;
	r->boot_ns = bpf_ktime_get_boot_ns();
	r->trigger_pid = id >> 32;
	r->trigger_tid = (u32)id;
	bpf_get_current_comm(&r->trigger_comm, sizeof(r->trigger_comm));
	r->totalpages = BPF_CORE_READ(oc, totalpages);
	r->gfp_mask = BPF_CORE_READ(oc, gfp_mask);
	r->order = BPF_CORE_READ(oc, order);
	r->constraint = BPF_CORE_READ(oc, constraint);
	r->oom_memcg_id = 0;
	if (memcg && bpf_core_field_exists(memcg->css))
		r->oom_memcg_id = cgroup_id(BPF_CORE_READ(memcg, css.cgroup));
	if (n > MAX_CANDIDATES)
		n = MAX_CANDIDATES;
	if (bpf_ringbuf_output(&events, r, __builtin_offsetof(struct candidates_record, c) + n * sizeof(struct candidate), 0)) {
		u64 *lostn = bpf_map_lookup_elem(&lost, &zero);
		if (lostn)
			*lostn += 1;
	}
}

/* out_of_memory() returns whether it chose someone: false after a scan
 * that found no killable task (or with the OOM killer disabled, during
 * suspend), which the kernel retries as long as the allocation does. */
static __always_inline int on_oom_end(struct oom_control *oc, bool chose)
{
	struct oom_call *c = this_oom_call();

	if (!c)
		return 0;
	if (!chose && oc)
		send_candidates(c, RECORD_NO_KILL, oc);
	c->tid = 0;
	return 0;
}

/* Sends the current thread's kernel stack, for the record that follows.
 * A stack that cannot be had costs that one value, never the kill. */
static __always_inline void send_stack(void *ctx, u64 seq, u64 entry_lr)
{
	struct stack_record *s = bpf_ringbuf_reserve(&events, sizeof(*s), 0);
	u32 zero = 0;

	if (!s) {
		u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return;
	}
	s->boot_ns = bpf_ktime_get_boot_ns();
	s->seq = seq;
	s->kind = RECORD_STACK;
	s->tid = (u32)bpf_get_current_pid_tgid();
	s->pad = 0;
	s->entry_lr = entry_lr;
	s->len = bpf_get_stack(ctx, s->ips, sizeof(s->ips), 0);
	bpf_ringbuf_submit(s, 0);
}

/* A mark's stack, where no hooked decision runs on this thread (that
 * decision's begin record has it). */
static __always_inline void send_mark_stack(void *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&running, &tid))
		send_stack(ctx, 0, 0);
}

static __always_inline int on_kill_begin(void *ctx, struct oom_control *oc, u64 entry_lr)
{
	struct oom_call *call = this_oom_call();
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct decision d = {};
	struct record *r;
	struct mem_cgroup *memcg = BPF_CORE_READ(oc, memcg);

	d.seq = ++next_seq;
	d.memcg = (u64)memcg;
	d.memcg_kills = memcg_oom_kills(memcg);
	bpf_map_update_elem(&running, &tid, &d, BPF_ANY);
	if (call) {
		/* The candidates come first, so the join has them when the
		 * decision's begin record arrives. */
		call->rec.seq = d.seq;
		send_candidates(call, RECORD_CANDIDATES, oc);
	}
	send_stack(ctx, d.seq, entry_lr);
	r = reserve(RECORD_KILL_BEGIN);
	if (!r)
		return 0;
	r->seq = d.seq;
	fill_scope(r, oc, SCOPE_HOOK);
	read_task(BPF_CORE_READ(oc, chosen), &r->task);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

static __always_inline int on_kill_end(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct decision *d = bpf_map_lookup_elem(&running, &tid);
	struct record *r;

	if (!d)
		return 0;
	r = reserve(RECORD_KILL_END);
	if (r) {
		r->seq = d->seq;
		if (d->memcg)
			r->memcg_kills = memcg_oom_kills((struct mem_cgroup *)d->memcg) - d->memcg_kills;
		r->kills = d->kills;
		bpf_ringbuf_submit(r, 0);
	}
	bpf_map_delete_elem(&running, &tid);
	return 0;
}

static __always_inline struct record *mark_record(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct decision *d = bpf_map_lookup_elem(&running, &tid);
	struct record *r = reserve(RECORD_MARK);

	if (r && d)
		r->seq = d->seq;
	return r;
}

/*
 * Where oom_kill_process() cannot be hooked, the decision is still on the
 * stack: out_of_memory()'s caller keeps its struct oom_control in its frame,
 * and __oom_kill_process() marks the victim from below it, on the same
 * thread. At a mark that this thread's SIGKILL preceded, the stack is scanned
 * for a word equal to the victim (or its group leader, the task oc->chosen
 * names), and each candidate is taken for oc->chosen only if the struct
 * around it is a plausible oom_control: constraint in the enum, order and
 * totalpages in range, and a memcg that is NULL (global) or the victim's own
 * or an ancestor.
 */
#define STACK_CHUNK_WORDS 64 /* 512 bytes per read */
#define STACK_CHUNKS 32      /* 16 KiB: THREAD_SIZE on x86-64 and arm64 */
/* The newest matches kept, a power of two: a deep stack whose task is its
 * own trigger (a victim dumping core) holds its pointer in many frames
 * above the oom_control's. */
#define STACK_CANDIDATES 64
#define MEMCG_DEPTH 16

/* The scan's working memory. The candidates live here, not in registers:
 * the verifier does not track map memory, so a match does not fork its state
 * for the rest of the loop (2048 words would otherwise exceed its limit). */
struct stack_scan {
	u64 base;                   /* the stack's lowest address */
	u64 task, leader;           /* the words searched for */
	u64 css;                    /* the victim's memory css, for plausible_candidate() */
	u64 w[STACK_CHUNK_WORDS];
	u32 cand[STACK_CANDIDATES]; /* word index of each match, a ring */
	u32 n;                      /* matches so far */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct stack_scan);
} stack_buf SEC(".maps");

/* The css of the victim's memory cgroup, or 0. */
static __always_inline struct cgroup_subsys_state *task_memcg_css(struct task_struct *task)
{
	struct cgroup_subsys_state *css = 0;
	struct css_set *cset;
	int id;

	if (!bpf_core_field_exists(task->cgroups) ||
	    !bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0;
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (id < 0 || id >= 16)
		return 0;
	cset = BPF_CORE_READ(task, cgroups);
	if (!cset)
		return 0;
	bpf_probe_read_kernel(&css, sizeof(css), __builtin_preserve_access_index(&cset->subsys[0]) + id);
	return css;
}

/* Whether memcg is the css's mem_cgroup or one of its ancestors'. */
static __always_inline bool memcg_on_chain(u64 memcg, struct cgroup_subsys_state *css)
{
	long off = bpf_core_field_offset(struct mem_cgroup, css);

	for (int i = 0; i < MEMCG_DEPTH && css; i++) {
		if ((u64)css - off == memcg)
			return true;
		css = BPF_CORE_READ(css, parent);
	}
	return false;
}

static __always_inline bool plausible_oc(struct oom_control *oc, struct cgroup_subsys_state *css)
{
	u64 memcg = (u64)BPF_CORE_READ(oc, memcg);
	u32 constraint = BPF_CORE_READ(oc, constraint);
	int order = BPF_CORE_READ(oc, order);
	u64 totalpages = BPF_CORE_READ(oc, totalpages);

	if (order < -1 || order > 16 || totalpages == 0 || totalpages > (1ULL << 40))
		return false;
	if (memcg)
		return constraint == CONSTRAINT_MEMCG && memcg_on_chain(memcg, css);
	return constraint <= CONSTRAINT_MEMORY_POLICY;
}

/* Scans chunk c of the stack for the scan's task and leader words, adding
 * each match's word index to its candidates. Returns 0, or -1 when the
 * chunk cannot be read.
 *
 * A global function, on purpose: the verifier checks it once, on its own,
 * instead of once per unrolled iteration of the caller's loop. Inlined, the
 * 2048-word scan took the verifier over 100 ms to accept (most of the
 * daemon's startup); this way it checks 64 words and 32 calls. What it
 * searches for comes through the map, since a global function takes only
 * scalars (a task pointer is not one to the verifier, cast or not). */
__noinline int scan_stack_chunk(u32 c)
{
	u32 zero = 0;
	struct stack_scan *buf = bpf_map_lookup_elem(&stack_buf, &zero);

	if (!buf || c >= STACK_CHUNKS)
		return -1;
	if (bpf_probe_read_kernel(buf->w, sizeof(buf->w), (void *)(buf->base + c * sizeof(buf->w))))
		return -1;
	for (u32 i = 0; i < STACK_CHUNK_WORDS; i++) {
		u64 w = buf->w[i];
		if (w == buf->task || w == buf->leader) {
			buf->cand[buf->n & (STACK_CANDIDATES - 1)] = c * STACK_CHUNK_WORDS + i;
			buf->n++;
		}
	}
	return 0;
}

/* The address of the struct oom_control around the k-th newest candidate
 * if it is a plausible one, else 0. Newest (highest, so outermost frame)
 * first: what lies below the current frame is stale. A global function for
 * the reason scan_stack_chunk() is: the candidates' checks walk the memcg
 * chain, 64 times 16 steps when inlined. */
__noinline u64 plausible_candidate(u32 k)
{
	long off = bpf_core_field_offset(struct oom_control, chosen);
	u32 zero = 0;
	struct stack_scan *buf = bpf_map_lookup_elem(&stack_buf, &zero);
	u64 oc;

	if (!buf || k >= buf->n || k >= STACK_CANDIDATES)
		return 0;
	oc = buf->base + (u64)buf->cand[(buf->n - 1 - k) & (STACK_CANDIDATES - 1)] * 8 - off;
	if (!plausible_oc((void *)oc, (void *)buf->css))
		return 0;
	return oc;
}

static __always_inline void scope_from_stack(struct record *r, struct task_struct *task)
{
	struct task_struct *current = (void *)bpf_get_current_task();
	u32 zero = 0;
	struct stack_scan *buf = bpf_map_lookup_elem(&stack_buf, &zero);
	void *stack;

	if (!buf || !bpf_core_field_exists(current->stack))
		return;
	stack = BPF_CORE_READ(current, stack);
	if (!stack)
		return;
	buf->n = 0;
	buf->base = (u64)stack;
	buf->task = (u64)task;
	buf->leader = (u64)BPF_CORE_READ(task, group_leader);
	buf->css = (u64)task_memcg_css(task);
	for (u32 c = 0; c < STACK_CHUNKS; c++)
		scan_stack_chunk(c);
	for (u32 k = 0; k < STACK_CANDIDATES; k++) {
		u64 oc = plausible_candidate(k);

		if (oc) {
			fill_scope(r, (void *)oc, SCOPE_STACK);
			return;
		}
	}
}

SEC("fentry/oom_kill_process")
int BPF_PROG(fentry_oom_kill_process, struct oom_control *oc)
{
	return on_kill_begin(ctx, oc, 0);
}

SEC("fexit/oom_kill_process")
int BPF_PROG(fexit_oom_kill_process)
{
	return on_kill_end();
}

SEC("kprobe/oom_kill_process")
int BPF_KPROBE(kprobe_oom_kill_process, struct oom_control *oc)
{
#if defined(__TARGET_ARCH_arm64)
	return on_kill_begin(ctx, oc, PT_REGS_RET(ctx));
#else
	/* x86's unwinder finds the caller's return address on the stack. */
	return on_kill_begin(ctx, oc, 0);
#endif
}

SEC("kretprobe/oom_kill_process")
int BPF_KRETPROBE(kretprobe_oom_kill_process)
{
	return on_kill_end();
}

SEC("fentry/out_of_memory")
int BPF_PROG(fentry_out_of_memory, struct oom_control *oc)
{
	return on_oom_begin(oc);
}

SEC("fexit/out_of_memory")
int BPF_PROG(fexit_out_of_memory, struct oom_control *oc, bool ret)
{
	return on_oom_end(oc, ret);
}

/* long oom_badness(struct task_struct *p, unsigned long totalpages): the
 * prototype since 5.9; userspace checks it in BTF before loading. */
SEC("fexit/oom_badness")
int BPF_PROG(fexit_oom_badness, struct task_struct *p, unsigned long totalpages, long ret)
{
	return on_badness(p, ret);
}

SEC("kprobe/out_of_memory")
int BPF_KPROBE(kprobe_out_of_memory, struct oom_control *oc)
{
	return on_oom_begin(oc);
}

SEC("kretprobe/out_of_memory")
int BPF_KRETPROBE(kretprobe_out_of_memory, bool ret)
{
	struct oom_call *c = this_oom_call();

	return on_oom_end(c ? (struct oom_control *)c->oc : 0, ret);
}

/* The kprobe pair hands the task from entry to return through the call's
 * state: one deciding thread, one oom_badness() at a time on it. */
SEC("kprobe/oom_badness")
int BPF_KPROBE(kprobe_oom_badness, struct task_struct *p)
{
	struct oom_call *c = this_oom_call();

	if (c)
		c->badness_task = (u64)p;
	return 0;
}

SEC("kretprobe/oom_badness")
int BPF_KRETPROBE(kretprobe_oom_badness, long ret)
{
	struct oom_call *c = this_oom_call();
	struct task_struct *p;

	if (!c || !c->badness_task)
		return 0;
	p = (void *)c->badness_task;
	c->badness_task = 0;
	return on_badness(p, ret);
}

/* The kernel SIGKILL this thread sent last, if it went to the marked task
 * (the task, or its thread id for the layouts that give only that): flags
 * the mark as a real kill and returns the task. Consumed: the signal belongs
 * to the mark that follows it, no later one. */
static __always_inline struct task_struct *sigkilled(struct task_struct *task, u32 tid, u32 *flags)
{
	u32 cur = (u32)bpf_get_current_pid_tgid();
	struct kill_signal *ks = bpf_map_lookup_elem(&kill_signals, &cur);
	struct task_struct *target;

	if (!ks)
		return 0;
	target = (void *)ks->task;
	if (task ? target == task : BPF_CORE_READ(target, pid) == tid) {
		*flags |= TASK_OOM_SIGKILLED;
		if (ks->rekill)
			*flags |= TASK_REKILLED;
	} else {
		target = 0;
	}
	bpf_map_delete_elem(&kill_signals, &cur);
	return target;
}

/* mark_victim since the 2024 change: TP_PROTO(struct task_struct *, uid_t).
 * Userspace loads this program only where BTF shows that prototype. */
SEC("tp_btf/mark_victim")
int BPF_PROG(tp_btf_mark_victim, struct task_struct *task)
{
	struct record *r;
	u32 flags = 0;

	send_mark_stack(ctx);
	r = mark_record();
	if (!r)
		return 0;
	sigkilled(task, 0, &flags);
	read_task(task, &r->task);
	r->task.flags |= flags;
	if (!r->seq && (flags & TASK_OOM_SIGKILLED) && !(flags & TASK_REKILLED))
		scope_from_stack(r, task);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* The task a mark names by thread id, when this program can reach it: the
 * current task, or the target of the OOM killer's SIGKILL that this thread
 * sent just before marking. NULL otherwise. */
static __always_inline struct task_struct *marked_task(u32 tid, u32 *flags)
{
	struct task_struct *task = sigkilled(0, tid, flags);

	if (!task && tid == (u32)bpf_get_current_pid_tgid())
		task = (void *)bpf_get_current_task();
	return task;
}

/* Fills a mark of thread tid: in full when the task can be reached,
 * otherwise only the id (userspace completes it from /proc). */
static __always_inline void fill_mark(struct record *r, u32 tid)
{
	u32 flags = 0;
	struct task_struct *task = marked_task(tid, &flags);

	if (task) {
		read_task(task, &r->task);
		if (!r->seq && (flags & TASK_OOM_SIGKILLED) && !(flags & TASK_REKILLED))
			scope_from_stack(r, task);
	} else {
		r->task.tid = tid;
		flags |= TASK_PARTIAL;
	}
	r->task.flags |= flags;
}

/* mark_victim before the 2024 change: TP_PROTO(int pid), the victim's thread
 * id. Loaded instead of the above where BTF shows that prototype. */
SEC("tp_btf/mark_victim")
int BPF_PROG(tp_btf_mark_victim_pid, int pid)
{
	struct record *r;

	send_mark_stack(ctx);
	r = mark_record();
	if (!r)
		return 0;
	fill_mark(r, pid);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* The classic tracepoint's record gives the victim's thread id, and since
 * the 2024 change its comm, uid, oom_score_adj and memory in kB: those are
 * taken when the task itself cannot be reached. */
SEC("tracepoint/oom/mark_victim")
int tracepoint_mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct trace_event_raw_mark_victim___2024 *rec = (void *)ctx;
	u32 tid = BPF_CORE_READ(ctx, pid);
	struct record *r;

	send_mark_stack(ctx);
	r = mark_record();
	if (!r)
		return 0;
	fill_mark(r, tid);
	if ((r->task.flags & TASK_PARTIAL) && bpf_core_field_exists(rec->anon_rss)) {
		struct task_info *ti = &r->task;
		u32 loc = BPF_CORE_READ(rec, __data_loc_comm);

		/* __data_loc: offset of the string in the record (low 16 bits),
		 * its length (high 16). */
		bpf_probe_read_kernel_str(ti->comm, sizeof(ti->comm), (void *)rec + (loc & 0xffff));
		ti->anon_pages = BPF_CORE_READ(rec, anon_rss);
		ti->file_pages = BPF_CORE_READ(rec, file_rss);
		ti->shmem_pages = BPF_CORE_READ(rec, shmem_rss);
		ti->pgtables_bytes = BPF_CORE_READ(rec, pgtables) << 10;
		ti->uid = BPF_CORE_READ(rec, uid);
		ti->oom_score_adj = BPF_CORE_READ(rec, oom_score_adj);
		ti->flags |= TASK_PAGES_KB;
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}

#define SIGKILL 9
#define SEND_SIG_PRIV ((struct kernel_siginfo *)1)

/* Every signal the kernel generates passes here: stay cheap, keep only the
 * kernel's own SIGKILLs, the kind __oom_kill_process() sends (it counts the
 * kill, sends SIGKILL, then marks the victim, all on the same thread). */
SEC("tp_btf/signal_generate")
int BPF_PROG(tp_btf_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task)
{
	u32 cur;
	struct kill_signal ks = { .task = (u64)task };
	struct decision *d;
	struct signal_struct *signal;

	if (sig != SIGKILL || info != SEND_SIG_PRIV)
		return 0;
	cur = (u32)bpf_get_current_pid_tgid();
	signal = BPF_CORE_READ(task, signal);
	if (bpf_core_field_exists(signal->oom_mm) && BPF_CORE_READ(signal, oom_mm))
		ks.rekill = 1;
	d = bpf_map_lookup_elem(&running, &cur);
	if (d) {
		/* Inside a hooked decision every such SIGKILL is the OOM
		 * killer's: a kill, except to the other processes that share
		 * the victim's mm (killed too, but neither counted nor marked). */
		u64 mm = (u64)BPF_CORE_READ(task, mm);
		u32 tgid = BPF_CORE_READ(task, tgid);

		if (d->kills && mm == d->last_mm && tgid != d->last_tgid)
			return 0;
		d->kills++;
		d->last_mm = mm;
		d->last_tgid = tgid;
	} else if (ks.rekill) {
		/* No decision framing: a kernel SIGKILL to an OOM victim is a
		 * re-kill by the OOM killer, unless the sender is exiting (a pid
		 * namespace's init, tearing the namespace down). */
		struct task_struct *current = (void *)bpf_get_current_task();
		struct record *r;

		if (BPF_CORE_READ(current, flags) & PF_EXITING) {
			ks.rekill = 0;
		} else if ((r = reserve(RECORD_REKILL))) {
			read_task(task, &r->task);
			bpf_ringbuf_submit(r, 0);
		}
	}
	bpf_map_update_elem(&kill_signals, &cur, &ks, BPF_ANY);
	return 0;
}

/*
 * Allocations the kernel refused (alloc_refused): fork, vfork, clone,
 * clone3, mmap, mremap and brk failing with ENOMEM.
 *
 * One program per syscall at its classic exit tracepoint
 * (syscalls:sys_exit_<name>, on every kernel since 5.10): only those
 * syscalls run a program, every other one pays just the kernel's check of
 * its bitmap of traced syscalls. An exit that did not fail returns after
 * one compare (brk, which fails by keeping its old break, after reading
 * the break asked for). The request is read at the exit from the user
 * registers the syscall entry saved at the top of the kernel stack
 * (task_pt_regs(): x86's di/si/dx, arm64's orig_x0/x1/x2, which the call
 * leaves as they were), so no enter hook and no map is touched on the
 * success path. Only a refusal reads the task and reserves a record. The
 * kernel's syscall events skip 32-bit tasks, whose numbers differ.
 */
enum alloc_syscall {
	ALLOC_FORK = 1,
	ALLOC_VFORK = 2,
	ALLOC_CLONE = 3,
	ALLOC_CLONE3 = 4,
	ALLOC_MMAP = 5,
	ALLOC_MREMAP = 6,
	ALLOC_BRK = 7,
};

struct alloc_record {
	u64 boot_ns;
	u64 seq;             /* always 0 */
	u32 kind;            /* RECORD_ALLOC_REFUSED */
	u32 syscall;         /* enum alloc_syscall */
	struct task_info task;
	s64 ret;             /* what the syscall returned */
	u64 request;         /* bytes: mmap length, mremap new_len, brk growth; fork-like: see below */
	u64 old_len;         /* mremap: old_len; brk: the break at the refusal */
	/* The caller's mm at the refusal, pages (mm->total_vm, data_vm,
	 * stack_vm): may_expand_vm()'s operands, and for a fork-like call the
	 * request, the private writable mappings dup_mmap() charges
	 * (data_vm + stack_vm, which VM_ACCOUNT covers). */
	u64 total_vm;
	u64 data_vm;
	u64 stack_vm;
	/* Refusals of this process and syscall so far (alloc_counts). */
	u64 count;
	/* clone, clone3: the flags asked for (CLONE_VM: a thread, no copy of
	 * the mm to charge). */
	u64 clone_flags;
};

const struct alloc_record *unused_alloc_record __attribute__((unused));
const enum alloc_syscall *unused_alloc_syscall __attribute__((unused));

#define ENOMEM 12
/* THREAD_SIZE on x86-64 and arm64 (4 KiB pages, no KASAN), as the stack
 * scan above assumes. */
#define KERNEL_STACK_SIZE 16384

/* The classic syscall exit tracepoint's record (the ftrace format, the
 * same on every kernel: the common header, the syscall number, the return
 * value). */
struct syscall_exit_ctx {
	struct trace_entry ent;
	long id;
	long ret;
};

/* The user registers the syscall entry saved: task_pt_regs(), the last
 * struct pt_regs of the task's kernel stack. */
static __always_inline struct pt_regs *user_regs(struct task_struct *task)
{
	void *stack = BPF_CORE_READ(task, stack);

	return (struct pt_regs *)(stack + KERNEL_STACK_SIZE - bpf_core_type_size(struct pt_regs));
}

/* The syscall's first three arguments (syscall_get_arguments()). */
static __always_inline u64 sys_arg0(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, di);
#else
	return BPF_CORE_READ(regs, orig_x0);
#endif
}

static __always_inline u64 sys_arg1(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, si);
#else
	return BPF_CORE_READ(regs, user_regs.regs[1]);
#endif
}

static __always_inline u64 sys_arg2(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, dx);
#else
	return BPF_CORE_READ(regs, user_regs.regs[2]);
#endif
}

/* Refusals by process and syscall. A failing loop is refused millions of
 * times a second: each refusal only counts here, and a record goes out at
 * most once per ALLOC_GATE_NS per process and syscall, carrying the count so
 * far. Userspace reads the count of the last ones, after their record, from
 * this map: nothing is lost, and the ring buffer is not flooded. Only
 * refusals touch it. */
struct alloc_key {
	u32 tgid;
	u32 syscall;
};

struct alloc_count {
	u64 start_time; /* the process's: a reused pid starts again from 0 */
	u64 count;      /* refusals so far */
	u64 sent_ns;    /* boot time of the last record */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct alloc_key);
	__type(value, struct alloc_count);
} alloc_counts SEC(".maps");

#define ALLOC_GATE_NS (10 * 1000 * 1000ULL)

static __always_inline int refused(struct task_struct *task, u32 syscall, long ret, u64 request, u64 old_len,
				   u64 clone_flags)
{
	struct alloc_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .syscall = syscall };
	u64 start = BPF_CORE_READ(task, group_leader, start_time);
	struct alloc_count *c = bpf_map_lookup_elem(&alloc_counts, &key);
	struct alloc_record *r;
	struct mm_struct *mm;
	u64 now;
	u32 zero = 0;

	if (!c || c->start_time != start) {
		struct alloc_count init = { .start_time = start };

		bpf_map_update_elem(&alloc_counts, &key, &init, BPF_ANY);
		c = bpf_map_lookup_elem(&alloc_counts, &key);
		if (!c)
			return 0;
	}
	/* Its result unused: a plain atomic add, which 5.10 accepts. */
	__sync_fetch_and_add(&c->count, 1);
	now = bpf_ktime_get_boot_ns();
	if (c->sent_ns && now - c->sent_ns < ALLOC_GATE_NS)
		return 0;
	c->sent_ns = now;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->boot_ns = now;
	r->kind = RECORD_ALLOC_REFUSED;
	r->syscall = syscall;
	r->ret = ret;
	r->request = request;
	r->old_len = old_len;
	r->clone_flags = clone_flags;
	r->count = c->count;
	read_task(task, &r->task);
	mm = BPF_CORE_READ(task, mm);
	if (mm) {
		r->total_vm = BPF_CORE_READ(mm, total_vm);
		if (bpf_core_field_exists(mm->data_vm))
			r->data_vm = BPF_CORE_READ(mm, data_vm);
		if (bpf_core_field_exists(mm->stack_vm))
			r->stack_vm = BPF_CORE_READ(mm, stack_vm);
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}

static __always_inline struct task_struct *current_task(void)
{
	return (void *)bpf_get_current_task();
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int alloc_exit_mmap(struct syscall_exit_ctx *ctx)
{
	struct task_struct *task;

	if (ctx->ret != -ENOMEM)
		return 0;
	task = current_task();
	return refused(task, ALLOC_MMAP, ctx->ret, sys_arg1(user_regs(task)), 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_mremap")
int alloc_exit_mremap(struct syscall_exit_ctx *ctx)
{
	struct task_struct *task;
	struct pt_regs *regs;

	if (ctx->ret != -ENOMEM)
		return 0;
	task = current_task();
	regs = user_regs(task);
	return refused(task, ALLOC_MREMAP, ctx->ret, sys_arg2(regs), sys_arg1(regs), 0);
}

/* brk returns the break it leaves: on failure the old one, below the
 * address asked for (brk(0) and shrinking return at or above it). */
SEC("tracepoint/syscalls/sys_exit_brk")
int alloc_exit_brk(struct syscall_exit_ctx *ctx)
{
	struct task_struct *task = current_task();
	u64 want = sys_arg0(user_regs(task)), ret = ctx->ret;

	if (ret >= want)
		return 0;
	return refused(task, ALLOC_BRK, ctx->ret, want - ret, ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_fork")
int alloc_exit_fork(struct syscall_exit_ctx *ctx)
{
	if (ctx->ret != -ENOMEM)
		return 0;
	return refused(current_task(), ALLOC_FORK, ctx->ret, 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_vfork")
int alloc_exit_vfork(struct syscall_exit_ctx *ctx)
{
	if (ctx->ret != -ENOMEM)
		return 0;
	return refused(current_task(), ALLOC_VFORK, ctx->ret, 0, 0, 0);
}

/* clone's flags are its first argument. */
SEC("tracepoint/syscalls/sys_exit_clone")
int alloc_exit_clone(struct syscall_exit_ctx *ctx)
{
	struct task_struct *task;

	if (ctx->ret != -ENOMEM)
		return 0;
	task = current_task();
	return refused(task, ALLOC_CLONE, ctx->ret, 0, 0, sys_arg0(user_regs(task)));
}

/* clone3's are the first field of its struct clone_args, in user memory. */
SEC("tracepoint/syscalls/sys_exit_clone3")
int alloc_exit_clone3(struct syscall_exit_ctx *ctx)
{
	struct task_struct *task;
	u64 flags = 0;

	if (ctx->ret != -ENOMEM)
		return 0;
	task = current_task();
	bpf_probe_read_user(&flags, sizeof(flags), (void *)sys_arg0(user_regs(task)));
	return refused(task, ALLOC_CLONE3, ctx->ret, 0, 0, flags);
}
