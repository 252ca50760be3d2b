package k8sevents

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// API is what the Poster needs of the Kubernetes API server: the two calls
// it makes, both on core/v1 Events in the Event's namespace. InCluster
// returns one; tests use a stand-in.
type API interface {
	// CreateEvent creates ev (POST /api/v1/namespaces/{ns}/events).
	CreateEvent(ctx context.Context, ev *Event) error
	// PatchEvent applies a JSON merge patch to the Event namespace/name
	// (PATCH /api/v1/namespaces/{ns}/events/{name}, Content-Type
	// application/merge-patch+json). When the Event is gone (HTTP 404),
	// the error wraps ErrNotFound: errors.Is(err, ErrNotFound).
	PatchEvent(ctx context.Context, namespace, name string, mergePatch []byte) error
}

// ErrNotFound is what a PatchEvent error wraps when the Event does not
// exist (any more): Events expire, an hour after their last write by
// default, or are deleted.
var ErrNotFound = errors.New("k8sevents: Event not found")

// Event is a core/v1 Event as it goes on the wire: the JSON names and
// omissions are those of k8s.io/api/core/v1.Event (with the fields the
// Poster uses), so the API server reads it as one. The tests check it
// against that type, decoding strictly.
//
// eventTime, series, action and related are left out: unset, as in the
// Events the Poster wrote through client-go (there eventTime went as null,
// the same to the API server as absent).
type Event struct {
	APIVersion string `json:"apiVersion,omitempty"` // "v1"
	Kind       string `json:"kind,omitempty"`       // "Event"
	ObjectMeta `json:"metadata"`

	InvolvedObject ObjectReference `json:"involvedObject"`
	Reason         string          `json:"reason,omitempty"`
	Message        string          `json:"message,omitempty"`
	Source         EventSource     `json:"source,omitempty"`
	FirstTimestamp Time            `json:"firstTimestamp,omitempty"`
	LastTimestamp  Time            `json:"lastTimestamp,omitempty"`
	Count          int32           `json:"count,omitempty"`
	Type           string          `json:"type,omitempty"` // "Normal" or "Warning"

	ReportingController string `json:"reportingComponent"`
	ReportingInstance   string `json:"reportingInstance"`
}

// ObjectMeta is the part of metav1.ObjectMeta an Event being created
// needs.
type ObjectMeta struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// ObjectReference is core/v1 ObjectReference: the object an Event is about.
type ObjectReference struct {
	Kind            string `json:"kind,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	FieldPath       string `json:"fieldPath,omitempty"`
}

// EventSource is core/v1 EventSource: who reports an Event.
type EventSource struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

// EventTypeWarning is the Type of the Poster's Events.
const EventTypeWarning = "Warning"

// Time is a timestamp as metav1.Time puts it on the wire: RFC 3339 in UTC
// to the second ("2006-01-02T15:04:05Z"; a fraction of a second is cut
// off), and null for the zero Time.
type Time struct{ time.Time }

// NewTime is t as a Time.
func NewTime(t time.Time) Time { return Time{t} }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(time.RFC3339)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("k8sevents: time %s: not a JSON string", b)
	}
	v, err := time.Parse(time.RFC3339, string(b[1:len(b)-1]))
	if err != nil {
		return err
	}
	t.Time = v.UTC()
	return nil
}
