/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel types oomtrace reads, and nothing else.
 *
 * Every struct is marked preserve_access_index, so clang records each field
 * access as a CO-RE relocation and the loader moves it to wherever the running
 * kernel's BTF puts the field. Only the fields listed here are ever read: this
 * file is the complete list of what the tracer depends on in the kernel.
 * Names with a ___suffix are "flavours": alternative layouts of the same
 * kernel type, matched by the part before the suffix.
 */
#ifndef OOMTRACE_VMLINUX_MIN_H
#define OOMTRACE_VMLINUX_MIN_H

/* Tells libbpf's bpf_tracing.h to use the kernel's pt_regs field names. */
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef short int __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef unsigned int gfp_t;
enum { false = 0, true = 1 };

#define __pai __attribute__((preserve_access_index))

typedef struct { s64 counter; } atomic_long_t;
typedef struct { u32 val; } kuid_t;

/* Kernel 6.2+: one percpu_counter per counter; the kernel reads .count. */
struct percpu_counter {
	s64 count;
} __pai;

/* Before 6.2: struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }.
 * Its existence in the kernel's BTF is how the program picks the layout. */
struct mm_rss_stat {
	atomic_long_t count[4];
} __pai;

struct mm_struct {
	struct percpu_counter rss_stat[4];
	atomic_long_t pgtables_bytes;
	/* Pages mapped: all, private writable (not stack), stack. */
	unsigned long total_vm;
	unsigned long data_vm;
	unsigned long stack_vm;
} __pai;

struct mm_struct___pre62 {
	struct mm_rss_stat rss_stat;
} __pai;

/* Index of each counter in rss_stat, the kernel's enum order since 4.5. */
enum {
	MM_FILEPAGES = 0,
	MM_ANONPAGES = 1,
	MM_SWAPENTS = 2,
	MM_SHMEMPAGES = 3,
};

struct kernfs_node {
	u64 id;
} __pai;

struct cgroup {
	struct kernfs_node *kn;
} __pai;

struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
} __pai;

struct css_set {
	struct cgroup_subsys_state *subsys[16];
	struct cgroup *dfl_cgrp;
} __pai;

/* The value of memory_cgrp_id depends on which controllers the kernel was
 * built with; it is resolved against the kernel's enum at load time. */
enum cgroup_subsys_id {
	memory_cgrp_id = 4,
};

/* Index of the oom_kill counter in memory_events; resolved at load time. */
enum memcg_memory_event {
	MEMCG_OOM_KILL = 4,
};

struct mem_cgroup {
	struct cgroup_subsys_state css;
	/* memory.events; on cgroup v2 a kill also counts in every ancestor
	 * below the root, so the OOM memcg's counter sees all its kills. */
	atomic_long_t memory_events[9];
} __pai;

struct cred {
	kuid_t uid;
} __pai;

struct list_head {
	struct list_head *next;
	struct list_head *prev;
};

struct signal_struct {
	struct list_head thread_head;
	void *oom_mm;        /* set when a task of the process is first marked */
	int nr_threads;
	unsigned int flags;
	short oom_score_adj;
	bool oom_flag_origin;
} __pai;

struct task_struct {
	unsigned int flags;
	struct mm_struct *mm;
	int pid;
	int tgid;
	struct task_struct *group_leader;
	u64 start_time;
	const struct cred *real_cred;
	char comm[16];
	struct signal_struct *signal;
	struct css_set *cgroups;
	struct list_head thread_node;
	void *stack;         /* the kernel stack, THREAD_SIZE bytes */
} __pai;

enum oom_constraint {
	CONSTRAINT_NONE,
	CONSTRAINT_CPUSET,
	CONSTRAINT_MEMORY_POLICY,
	CONSTRAINT_MEMCG,
};

struct oom_control {
	void *zonelist;
	void *nodemask;
	struct mem_cgroup *memcg;
	gfp_t gfp_mask;
	int order;
	unsigned long totalpages;
	struct task_struct *chosen;
	long chosen_points;
	enum oom_constraint constraint;
} __pai;

/* The classic tracepoint's record. pid is the one field every kernel since
 * 4.13 has; the rest came with a 2024 patch (flavour ___2024, read only
 * where the kernel's BTF has them). */
struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

struct trace_event_raw_mark_victim {
	struct trace_entry ent;
	int pid;
} __pai;

struct trace_event_raw_mark_victim___2024 {
	struct trace_entry ent;
	int pid;
	u32 __data_loc_comm;
	unsigned long total_vm;
	unsigned long anon_rss;   /* kB */
	unsigned long file_rss;   /* kB */
	unsigned long shmem_rss;  /* kB */
	u32 uid;
	unsigned long pgtables;   /* kB */
	short oom_score_adj;
} __pai;

struct kernel_siginfo;

/* Registers, for the kprobe fallback's argument access (bpf_tracing.h's
 * PT_REGS_PARM* macros pick the fields by target architecture), and
 * alloc_refused's syscall arguments at their exit. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
} __pai;
#elif defined(__TARGET_ARCH_arm64)
/* uapi: the head of the kernel's struct pt_regs. */
struct user_pt_regs {
	u64 regs[31];
	u64 sp;
	u64 pc;
	u64 pstate;
};
struct pt_regs {
	struct user_pt_regs user_regs;
	u64 orig_x0;   /* the first argument: x0 is overwritten by the return value */
} __pai;
#else
#error "oomtrace's BPF program is built for x86 and arm64 only"
#endif

#define PF_EXITING 0x00000004
#define SIGNAL_GROUP_EXIT 0x00000004

/* Map types and flags used here (uapi, stable). */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
};

#endif
