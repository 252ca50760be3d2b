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
 * Each mark_victim carries the sequence number of the decision running on
 * the same thread, if any, so userspace can join them without guessing.
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
};

/* A decision in progress, by the thread running it. */
struct decision {
	u64 seq;
	u64 memcg;                /* oc->memcg, pinned by the kernel for the OOM */
	u64 memcg_kills;          /* its oom_kill event count at the start */
};

enum task_flags {
	/* The victim was already exiting when chosen: oom_kill_process() then
	 * takes its task_will_free_mem() shortcut and kills nothing. */
	TASK_EXITING = 1 << 0,
	/* Only the pid is known (classic tracepoint, victim is not current). */
	TASK_PARTIAL = 1 << 1,
	/* signal->oom_flag_origin: oom_task_origin(), chosen before anyone else. */
	TASK_OOM_ORIGIN = 1 << 2,
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
	/* KILL_END only: how much the OOM memcg's oom_kill counter grew during
	 * the decision; 0 for a global OOM. */
	u32 memcg_kills;
};

/* Force the record types into BTF so bpf2go can generate Go twins. */
const struct record *unused_record __attribute__((unused));
const enum record_kind *unused_kind __attribute__((unused));
const enum task_flags *unused_flags __attribute__((unused));

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

u64 next_seq = 0;

static __always_inline u64 cgroup_id(struct cgroup *cgrp)
{
	if (!cgrp)
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
	if (!mm)
		return;
	if (bpf_core_type_exists(struct mm_rss_stat)) {
		/* Before 6.2: atomic counters in struct mm_rss_stat. */
		struct mm_struct___pre62 *old = (void *)mm;
		ti->file_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES].counter));
		ti->anon_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES].counter));
		ti->swap_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_SWAPENTS].counter));
		ti->shmem_pages = positive(BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES].counter));
	} else {
		/* 6.2+: percpu_counter; the OOM killer reads the approximate
		 * .count (percpu_counter_read_positive), and so do we. */
		ti->file_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_FILEPAGES].count));
		ti->anon_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count));
		ti->swap_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_SWAPENTS].count));
		ti->shmem_pages = positive(BPF_CORE_READ(mm, rss_stat[MM_SHMEMPAGES].count));
	}
	if (bpf_core_field_exists(mm->pgtables_bytes))
		ti->pgtables_bytes = positive(BPF_CORE_READ(mm, pgtables_bytes.counter));
}

static __always_inline void read_task(struct task_struct *task, struct task_info *ti)
{
	struct signal_struct *signal = BPF_CORE_READ(task, signal);
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	u32 task_flags = BPF_CORE_READ(task, flags);

	ti->pid = BPF_CORE_READ(task, tgid);
	ti->tid = BPF_CORE_READ(task, pid);
	ti->start_time = BPF_CORE_READ(task, group_leader, start_time);
	ti->uid = BPF_CORE_READ(task, real_cred, uid.val);
	ti->oom_score_adj = BPF_CORE_READ(signal, oom_score_adj);
	BPF_CORE_READ_INTO(&ti->comm, task, comm);
	read_mm(BPF_CORE_READ(task, mm), ti);
	if (cset) {
		ti->memcg_id = memcg_cgroup_id(cset);
		ti->dfl_cgroup_id = cgroup_id(BPF_CORE_READ(cset, dfl_cgrp));
	}
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

	if (!memcg || !bpf_core_enum_value_exists(enum memcg_memory_event, MEMCG_OOM_KILL))
		return 0;
	idx = bpf_core_enum_value(enum memcg_memory_event, MEMCG_OOM_KILL);
	if (idx < 0 || idx >= 9)
		return 0;
	atomic_long_t *events = __builtin_preserve_access_index(&memcg->memory_events[0]);
	s64 n = 0;
	bpf_probe_read_kernel(&n, sizeof(n), &events[idx].counter);
	return positive(n);
}

static __always_inline int on_kill_begin(struct oom_control *oc)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct decision d = {};
	struct record *r;
	struct mem_cgroup *memcg = BPF_CORE_READ(oc, memcg);

	d.seq = __sync_fetch_and_add(&next_seq, 1) + 1;
	d.memcg = (u64)memcg;
	d.memcg_kills = memcg_oom_kills(memcg);
	bpf_map_update_elem(&running, &tid, &d, BPF_ANY);
	r = reserve(RECORD_KILL_BEGIN);
	if (!r)
		return 0;
	r->seq = d.seq;
	r->chosen_points = BPF_CORE_READ(oc, chosen_points);
	r->totalpages = BPF_CORE_READ(oc, totalpages);
	r->gfp_mask = BPF_CORE_READ(oc, gfp_mask);
	r->order = BPF_CORE_READ(oc, order);
	r->constraint = BPF_CORE_READ(oc, constraint);
	if (memcg)
		r->oom_memcg_id = cgroup_id(BPF_CORE_READ(memcg, css.cgroup));
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

SEC("fentry/oom_kill_process")
int BPF_PROG(fentry_oom_kill_process, struct oom_control *oc)
{
	return on_kill_begin(oc);
}

SEC("fexit/oom_kill_process")
int BPF_PROG(fexit_oom_kill_process)
{
	return on_kill_end();
}

SEC("kprobe/oom_kill_process")
int BPF_KPROBE(kprobe_oom_kill_process, struct oom_control *oc)
{
	return on_kill_begin(oc);
}

SEC("kretprobe/oom_kill_process")
int BPF_KRETPROBE(kretprobe_oom_kill_process)
{
	return on_kill_end();
}

/* The first argument is the task on every kernel; the 2024 change added a
 * second (uid), which is not read. */
SEC("tp_btf/mark_victim")
int BPF_PROG(tp_btf_mark_victim, struct task_struct *task)
{
	struct record *r = mark_record();

	if (!r)
		return 0;
	read_task(task, &r->task);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* The classic tracepoint gives the victim's thread id, not its task. When
 * the victim is the current task (the dying-thread shortcut, or a trigger that
 * chose itself) it is read in full; otherwise only the id is known. */
SEC("tracepoint/oom/mark_victim")
int tracepoint_mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct task_struct *current = (void *)bpf_get_current_task();
	u32 tid = BPF_CORE_READ(ctx, pid);
	struct record *r = mark_record();

	if (!r)
		return 0;
	if (tid == (u32)bpf_get_current_pid_tgid()) {
		read_task(current, &r->task);
	} else {
		r->task.tid = tid;
		r->task.flags = TASK_PARTIAL;
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}
