package cgroups

import "github.com/oomtrace/oomtrace/kernel/cgroupfs"

// Hierarchy is where the memory controller is mounted (package cgroupfs's).
type Hierarchy = cgroupfs.Hierarchy

// FindMemoryHierarchy locates the memory controller (see cgroupfs).
func FindMemoryHierarchy() (Hierarchy, error) { return cgroupfs.FindMemoryHierarchy() }
