// Package mm holds what the kernel counts of a process's memory, as the OOM
// killer reads it: the mm counters, in pages.
package mm

// Pages are an mm's counters, in pages: MM_ANONPAGES, MM_FILEPAGES,
// MM_SHMEMPAGES, MM_SWAPENTS, and mm_pgtables_bytes() / PAGE_SIZE (rounded
// down, as the kernel does).
type Pages struct {
	Anon     uint64 `json:"anon"`
	File     uint64 `json:"file"`
	Shmem    uint64 `json:"shmem"`
	Swap     uint64 `json:"swap"`
	PgTables uint64 `json:"pgtables"`
}

// RSS is what get_mm_rss() returns: anon + file + shmem.
func (p Pages) RSS() uint64 { return p.Anon + p.File + p.Shmem }
