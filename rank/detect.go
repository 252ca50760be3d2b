package rank

// DefaultHysteresis is how far below the threshold a cgroup must drop
// before it can be reported again. A cgroup near its limit does not sit
// still: the kernel reclaims and the page cache refills, garbage collectors
// free and retake a few percent of a heap every cycle. Without a gap, one
// that hovers at the threshold would be reported every other tick; 5 points
// is above that jitter and below a real retreat and second approach.
const DefaultHysteresis = 0.05

// Level is one limited cgroup's ratio in one scan.
type Level struct {
	ID    uint64 // the cgroup id: a cgroup re-created under the same path is a new one
	Path  string
	Ratio float64

	node      int // what the Watcher needs again for a crossing
	usage, ws int64
}

// Detector reports a cgroup when its ratio crosses Threshold upward, once
// per crossing: it re-arms when the ratio drops below Threshold minus
// Hysteresis. A cgroup already above the threshold when first seen is
// reported (a daemon started during trouble should say so).
//
// Its memory is bounded by the cgroups currently reported: only they are
// remembered, and one missing from a scan (removed, or its limit lifted) is
// forgotten.
type Detector struct {
	Threshold  float64 // e.g. 0.9; 0 disables
	Hysteresis float64 // 0: DefaultHysteresis

	fired map[uint64]uint64 // reported and not re-armed: id → scan generation last seen
	gen   uint64
}

// rearm is the ratio below which a reported cgroup may be reported again.
func (d *Detector) rearm() float64 {
	h := d.Hysteresis
	if h <= 0 {
		h = DefaultHysteresis
	}
	return d.Threshold - h
}

// Update takes one scan, every limited cgroup in it, and returns the
// cgroups that crossed the threshold since the last.
func (d *Detector) Update(levels []Level) []Level {
	if d.Threshold <= 0 {
		return nil
	}
	if d.fired == nil {
		d.fired = map[uint64]uint64{}
	}
	d.gen++
	var crossed []Level
	for _, l := range levels {
		if _, ok := d.fired[l.ID]; ok {
			if l.Ratio < d.rearm() {
				delete(d.fired, l.ID)
			} else {
				d.fired[l.ID] = d.gen
			}
		} else if l.Ratio >= d.Threshold {
			d.fired[l.ID] = d.gen
			crossed = append(crossed, l)
		}
	}
	for id, g := range d.fired {
		if g != d.gen {
			delete(d.fired, id)
		}
	}
	return crossed
}
