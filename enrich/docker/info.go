package docker

import (
	"errors"
	"maps"
	"strings"
)

// Info is what Docker says of a container.
type Info struct {
	ID          string            // full id, 64 hex digits
	Name        string            // without Docker's leading "/"
	Image       string            // as the container was created with, e.g. "redis:7"
	ImageID     string            // "sha256:..."
	Labels      map[string]string // the container's labels; do not modify
	MemoryLimit int64             // HostConfig.Memory in bytes; 0 means none
}

// Errors of Lookup, for errors.Is.
var (
	ErrInvalidID   = errors.New("invalid container id")
	ErrNotFound    = errors.New("container not found")
	ErrUnavailable = errors.New("docker unavailable")
)

// ValidID reports whether id is a full container id: 64 lowercase hex
// digits, the form a container's cgroup path carries.
func ValidID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func fromInspect(r inspectResponse) Info {
	info := Info{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), ImageID: r.Image}
	if r.Config != nil {
		info.Image, info.Labels = r.Config.Image, r.Config.Labels
	}
	if r.HostConfig != nil {
		info.MemoryLimit = r.HostConfig.Memory
	}
	return info
}

// fromSummary is a listed container; the list has no memory limit.
func fromSummary(s containerSummary) Info {
	info := Info{ID: s.ID, Image: s.Image, ImageID: s.ImageID, Labels: s.Labels}
	if len(s.Names) > 0 {
		info.Name = strings.TrimPrefix(s.Names[0], "/")
	}
	return info
}

// eventKeys are the attributes of container events that are not labels:
// Docker mixes the labels in with them.
var eventKeys = map[string]bool{"name": true, "image": true, "oldName": true, "exitCode": true, "signal": true, "execID": true}

// fromEvent is the best that is known of a container that was removed
// before it could be inspected: name, image and labels from the event.
func fromEvent(a eventActor) Info {
	labels := maps.Clone(a.Attributes)
	maps.DeleteFunc(labels, func(k, _ string) bool { return eventKeys[k] })
	return Info{ID: a.ID, Name: a.Attributes["name"], Image: a.Attributes["image"], Labels: labels}
}
