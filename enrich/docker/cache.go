package docker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Options configure a Cache; zero values take the defaults.
type Options struct {
	// Host is Docker's address, e.g. unix:///var/run/docker.sock. Empty:
	// DOCKER_HOST (and the other DOCKER_* variables), else that socket.
	Host string
	// MaxWait bounds a Lookup of a container the cache does not hold yet
	// (default 150ms). A local inspect answers in milliseconds; the bound is
	// for a Docker that is busy or hung, not down (down fails at once).
	MaxWait time.Duration
	// Retention keeps removed containers findable this long (default 10m),
	// at most MaxRetained of them (default 4096).
	Retention   time.Duration
	MaxRetained int
	// OnError hears of errors in the background: Docker lost, an event
	// stream ended, an inspect failed. Run carries on after each.
	OnError func(error)
}

// Cache maps container ids to their Info. Safe for concurrent use.
type Cache struct {
	opts   Options
	api    *engine
	apiErr error // a bad Options.Host: Run returns it, lookups fail with it
	store  *store

	lookups, hits, misses, errors, reconnects atomic.Uint64
}

// Stats are counters for metrics.
type Stats struct {
	Lookups    uint64 // calls to Lookup
	Hits       uint64 // answered from the cache at once
	Misses     uint64 // not cached at the call: then waited for or inspected
	Errors     uint64 // returned an error (invalid id, not found, Docker unavailable)
	Reconnects uint64 // views of Docker re-established after losing (or never getting) one
	Cached     int    // containers Docker has
	Retained   int    // removed containers still findable
}

// NewCache makes a cache; Run fills it.
func NewCache(opts Options) *Cache {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 150 * time.Millisecond
	}
	if opts.Retention <= 0 {
		opts.Retention = 10 * time.Minute
	}
	if opts.MaxRetained <= 0 {
		opts.MaxRetained = 4096
	}
	api, err := newEngine(opts.Host)
	if err != nil {
		err = fmt.Errorf("docker client: %w", err)
	}
	return &Cache{opts: opts, api: api, apiErr: err, store: newStore(opts.Retention, opts.MaxRetained)}
}

// Stats reads the counters.
func (c *Cache) Stats() Stats {
	live, gone := c.store.Counts()
	return Stats{
		Lookups: c.lookups.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(),
		Errors: c.errors.Load(), Reconnects: c.reconnects.Load(), Cached: live, Retained: gone,
	}
}

// Lookup returns the container with this full id (see ValidID). When the
// cache does not hold it yet (its create event may still be on the way), it
// waits for the cache to learn it and inspects it meanwhile, for at most
// Options.MaxWait. Errors wrap ErrInvalidID, ErrNotFound or ErrUnavailable.
func (c *Cache) Lookup(ctx context.Context, id string) (Info, error) {
	c.lookups.Add(1)
	info, err := c.lookup(ctx, id)
	if err != nil {
		c.errors.Add(1)
	}
	return info, err
}

func (c *Cache) lookup(ctx context.Context, id string) (Info, error) {
	if !ValidID(id) {
		return Info{}, fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	if info, ok := c.store.Get(id, time.Now()); ok {
		c.hits.Add(1)
		return info, nil
	}
	c.misses.Add(1)
	if c.apiErr != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrUnavailable, c.apiErr)
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.MaxWait)
	defer cancel()
	type answer struct {
		info Info
		err  error
	}
	inspected := make(chan answer, 1)
	go func() {
		info, err := c.inspect(wctx, id)
		inspected <- answer{info, err}
	}()
	for {
		changed := c.store.Wait()
		if info, ok := c.store.Get(id, time.Now()); ok {
			return info, nil
		}
		select {
		case <-changed:
		case a := <-inspected:
			if a.err == nil {
				c.store.Put(a.info)
				return a.info, nil
			}
			// The destroy event may have come while the inspect ran.
			if info, ok := c.store.Get(id, time.Now()); ok {
				return info, nil
			}
			return Info{}, a.err
		case <-wctx.Done():
			if ctx.Err() != nil {
				return Info{}, fmt.Errorf("looking up container %.12s: %w", id, ctx.Err())
			}
			return Info{}, fmt.Errorf("%w: no answer within %v", ErrUnavailable, c.opts.MaxWait)
		}
	}
}

// inspect asks Docker, and sorts its failure into ErrNotFound and ErrUnavailable.
func (c *Cache) inspect(ctx context.Context, id string) (Info, error) {
	r, err := c.api.inspect(ctx, id)
	switch {
	case err == nil:
		return fromInspect(r), nil
	case errors.Is(err, errNoSuchContainer):
		return Info{}, fmt.Errorf("%w: %.12s", ErrNotFound, id)
	default:
		return Info{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

func (c *Cache) report(err error) {
	if c.opts.OnError != nil {
		c.opts.OnError(err)
	}
}
