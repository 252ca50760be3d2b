package k8sevents

// fakeAPI is the API of the Poster tests. No API server can run here, so
// client-go's fake clientset stands in for it: fakeAPI makes each call on
// the fake clientset as client-go's typed client would, after turning the
// Poster's Event into a core/v1 Event by its JSON, decoded strictly
// (coreEvent), and checking each merge patch (checkMergePatch). A field
// the real type lacks, mis-spelt or mis-cased, fails the test. client-go
// is linked into the tests only, never into the package.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

type fakeAPI struct {
	t  *testing.T
	cs *fake.Clientset
}

func (f *fakeAPI) CreateEvent(ctx context.Context, ev *Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		f.t.Errorf("CreateEvent: %v", err)
		return err
	}
	kev, err := coreEvent(b)
	if err != nil {
		f.t.Errorf("CreateEvent: %v", err)
		return err
	}
	_, err = f.cs.CoreV1().Events(kev.Namespace).Create(ctx, kev, metav1.CreateOptions{})
	return err
}

func (f *fakeAPI) PatchEvent(ctx context.Context, namespace, name string, mergePatch []byte) error {
	if err := checkMergePatch(mergePatch); err != nil {
		f.t.Errorf("PatchEvent: %v", err)
		return err
	}
	_, err := f.cs.CoreV1().Events(namespace).Patch(ctx, name, types.MergePatchType, mergePatch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// coreEvent decodes b, an Event's JSON, into a core/v1 Event, strictly: a
// field the type does not have is an error. encoding/json matches names
// regardless of case, so the Event is also encoded again and must be b
// key for key (a null the same as an absent key: the API server reads
// them alike).
func coreEvent(b []byte) (*corev1.Event, error) {
	var ev corev1.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("not a core/v1 Event: %w: %s", err, b)
	}
	if dec.More() {
		return nil, fmt.Errorf("not one JSON object: %s", b)
	}
	again, err := json.Marshal(&ev)
	if err != nil {
		return nil, err
	}
	var sent, real any
	if err := json.Unmarshal(b, &sent); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(again, &real); err != nil {
		return nil, err
	}
	if sent, real = dropNulls(sent), dropNulls(real); !reflect.DeepEqual(sent, real) {
		return nil, fmt.Errorf("the Event's JSON\n%s\nis not core/v1 Event's\n%s", b, again)
	}
	return &ev, nil
}

func dropNulls(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for k, x := range m {
		if x == nil {
			delete(m, k)
		} else {
			m[k] = dropNulls(x)
		}
	}
	return m
}

// checkMergePatch checks that b is the Poster's merge patch: count,
// lastTimestamp and message, all three, as core/v1 Event names and types
// them, and nothing else.
func checkMergePatch(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("merge patch %s: %w", b, err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"count", "lastTimestamp", "message"}) {
		return fmt.Errorf("merge patch %s: keys %v, want count, lastTimestamp, message", b, got)
	}
	var ev corev1.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return fmt.Errorf("merge patch %s: not of a core/v1 Event: %w", b, err)
	}
	if ev.Count <= 0 || ev.LastTimestamp.IsZero() || ev.Message == "" {
		return fmt.Errorf("merge patch %s: want a count, a lastTimestamp and a message", b)
	}
	return nil
}
