package docker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Reconnection backoff: quick for a daemon restart, capped for a Docker that
// stays down.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// callTimeout bounds one background call (list, inspect), so that a hung
	// daemon cannot stall the event loop for good.
	callTimeout = 10 * time.Second
)

// Run keeps the cache: it lists all containers (stopped ones too), then
// follows Docker's container events; when Docker goes away or restarts, it
// reconnects with exponential backoff and lists again. It returns nil when
// ctx ends, or at once the error of a bad Options.Host.
func (c *Cache) Run(ctx context.Context) error {
	if c.apiErr != nil {
		return c.apiErr
	}
	defer c.api.close()
	backoff, lost := minBackoff, false
	for {
		err := c.watch(ctx, func() {
			if lost {
				c.reconnects.Add(1)
			}
			backoff = minBackoff
		})
		if ctx.Err() != nil {
			return nil
		}
		lost = true
		c.report(fmt.Errorf("watching docker (retrying in %v): %w", backoff, err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// watch subscribes to events, lists, calls synced, then applies events until
// the stream fails.
func (c *Cache) watch(ctx context.Context, synced func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe first: a container created during the list is then in the
	// stream, rather than in neither.
	msgs, errs, err := c.api.events(ctx)
	if err != nil {
		return fmt.Errorf("subscribing to events: %w", err)
	}
	if err := c.relist(ctx); err != nil {
		return err
	}
	synced()
	for {
		select {
		case m := <-msgs:
			c.apply(ctx, m)
		case err := <-errs:
			return fmt.Errorf("event stream: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// relist lists every container and replaces the cache's view with it.
// Containers it already holds are not inspected again, only renamed: the
// list lacks the memory limit, and a change of it comes as an update event.
func (c *Cache) relist(ctx context.Context) error {
	before := c.store.LiveIDs()
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	items, err := c.api.list(lctx)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	listed := make(map[string]Info, len(items))
	now := time.Now()
	for _, s := range items {
		info := fromSummary(s)
		if old, ok := c.store.Get(s.ID, now); ok {
			old.Name, info = info.Name, old
		} else if full, err := c.inspectBg(ctx, s.ID); err == nil {
			info = full
		}
		listed[s.ID] = info
	}
	c.store.Sync(before, listed, time.Now())
	return nil
}

func (c *Cache) apply(ctx context.Context, m eventMessage) {
	id := m.Actor.ID
	switch m.Action {
	case actionCreate, actionRename, actionUpdate:
		c.refresh(ctx, m.Actor)
	case actionStart:
		// Known since its create event, unless that came before a reconnect.
		if _, ok := c.store.Get(id, time.Now()); !ok {
			c.refresh(ctx, m.Actor)
		}
	case actionDestroy:
		if _, ok := c.store.Get(id, time.Now()); !ok {
			c.store.Put(fromEvent(m.Actor)) // never seen: keep what the event says
		}
		c.store.Remove(id, time.Now())
	}
}

// refresh inspects a container. When that fails (it is gone already, or
// Docker hiccups), what the cache had, renamed as the event says, or else
// what the event says, is better than nothing.
func (c *Cache) refresh(ctx context.Context, a eventActor) {
	info, err := c.inspectBg(ctx, a.ID)
	if err != nil {
		var ok bool
		if info, ok = c.store.Get(a.ID, time.Now()); ok && a.Attributes["name"] != "" {
			info.Name = a.Attributes["name"]
		} else if !ok {
			info = fromEvent(a)
		}
	}
	c.store.Put(info)
}

func (c *Cache) inspectBg(ctx context.Context, id string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	info, err := c.inspect(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		c.report(fmt.Errorf("inspecting container %.12s: %w", id, err))
	}
	return info, err
}
