package k8sevents

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The in-cluster service account, where the kubelet mounts it (as
// client-go's rest.InClusterConfig reads it).
const (
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	tokenFile         = serviceAccountDir + "/token"
	caFile            = serviceAccountDir + "/ca.crt"
)

const (
	// userAgent is the requests' User-Agent.
	userAgent = "oomtrace"
	// tokenMaxAge is how long a token read from the file is used before
	// the file is read again, as client-go does: bound service account
	// tokens rotate (the kubelet rewrites the file well before expiry).
	// A 401 re-reads it at once.
	tokenMaxAge = time.Minute
	// Client-side rate limit, client-go's default (QPS 5, burst 10): the
	// Poster writes at most once per pod per window, but many pods at
	// once stay paced.
	clientQPS   = 5
	clientBurst = 10
	// maxRetryAfter bounds the retries of a request the API server
	// answered 429 (or 503) with Retry-After: it did not handle it.
	maxRetryAfter = 2
	// maxBody bounds what is read of a response.
	maxBody = 1 << 20
)

// ErrNotInCluster is what InCluster's error wraps outside a Kubernetes
// pod.
var ErrNotInCluster = errors.New("k8sevents: not running in a Kubernetes pod")

// InCluster is an API on the API server of the cluster this process runs
// in, as the pod's service account, the way client-go's
// rest.InClusterConfig finds it: https on KUBERNETES_SERVICE_HOST and
// KUBERNETES_SERVICE_PORT, the bearer token in
// /var/run/secrets/kubernetes.io/serviceaccount/token (read again every
// minute, and on a 401, as it rotates), the server certificate checked
// against ca.crt there, TLS 1.2 or later. It uses net/http alone.
//
// Outside a pod, and in a pod without a service account token, it says so.
func InCluster() (API, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, fmt.Errorf("%w (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset): Kubernetes Events need the in-cluster service account", ErrNotInCluster)
	}
	c, err := newRESTClient(host, port, tokenFile, caFile)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// restClient is InCluster's API.
type restClient struct {
	base      string // https://host:port
	http      *http.Client
	tokenPath string
	now       func() time.Time // the clock of the token's age
	limit     *limiter

	mu        sync.Mutex
	token     string
	tokenRead time.Time // when token was read from the file
}

// newRESTClient is InCluster's client on host:port (an IPv6 host without
// brackets, as KUBERNETES_SERVICE_HOST has it), with the token and CA
// certificate files given.
func newRESTClient(host, port, tokenPath, caPath string) (*restClient, error) {
	tok, err := readToken(tokenPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("k8sevents: in a Kubernetes pod without a service account token (automountServiceAccountToken: false?): %w", err)
	case err != nil:
		return nil, fmt.Errorf("k8sevents: in-cluster configuration: %w", err)
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("k8sevents: in-cluster configuration: the API server's CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("k8sevents: in-cluster configuration: no PEM certificate in %s", caPath)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() // proxy from the environment, as client-go
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &restClient{
		base:      "https://" + net.JoinHostPort(host, port),
		http:      &http.Client{Transport: tr},
		tokenPath: tokenPath,
		now:       time.Now,
		limit:     newLimiter(clientQPS, clientBurst),
		token:     tok,
		tokenRead: time.Now(),
	}, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("service account token %s is empty", path)
	}
	return tok, nil
}

// CreateEvent implements API.
func (c *restClient) CreateEvent(ctx context.Context, ev *Event) error {
	if ev == nil || ev.Namespace == "" {
		return errors.New("k8sevents: CreateEvent: an Event without namespace")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("k8sevents: CreateEvent: %w", err)
	}
	return c.do(ctx, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(ev.Namespace)+"/events", "application/json", body)
}

// PatchEvent implements API.
func (c *restClient) PatchEvent(ctx context.Context, namespace, name string, mergePatch []byte) error {
	if namespace == "" || name == "" {
		return errors.New("k8sevents: PatchEvent: no namespace or name")
	}
	return c.do(ctx, http.MethodPatch, "/api/v1/namespaces/"+url.PathEscape(namespace)+"/events/"+url.PathEscape(name), "application/merge-patch+json", mergePatch)
}

// do makes one API call; any answer but 2xx is an *APIError.
func (c *restClient) do(ctx context.Context, method, path, contentType string, body []byte) error {
	retried401, retries := false, 0
	for {
		if err := c.limit.wait(ctx); err != nil {
			return fmt.Errorf("%s %s: client-side rate limit: %w", method, c.base+path, err)
		}
		tok := c.currentToken()
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", userAgent)
		resp, err := c.http.Do(req)
		if err != nil {
			return err // *url.Error: method, URL and cause
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s %s: HTTP %d, reading the answer: %w", method, c.base+path, resp.StatusCode, err)
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			// The token may have rotated since it was read: read the
			// file again, and if it has changed, try once more.
			if !retried401 && c.refreshToken(tok) {
				retried401 = true
				continue
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok && retries < maxRetryAfter && sleep(ctx, d) {
				retries++
				continue
			}
		}
		return newAPIError(method, c.base+path, resp.StatusCode, data)
	}
}

// currentToken is the token, read again from the file once it is
// tokenMaxAge old; a failed read keeps the old one (and is tried again at
// the next call), as client-go does.
func (c *restClient) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.tokenRead) >= tokenMaxAge {
		if tok, err := readToken(c.tokenPath); err == nil {
			c.token, c.tokenRead = tok, now
		}
	}
	return c.token
}

// refreshToken reads the token file again after a 401 with the token
// used, and says whether the token is now another.
func (c *restClient) refreshToken(used string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != used {
		return true // read again meanwhile
	}
	tok, err := readToken(c.tokenPath)
	if err != nil {
		return false
	}
	c.token, c.tokenRead = tok, c.now()
	return tok != used
}

// retryAfter is a Retry-After header's delay in seconds (the API server's
// form), at most 10 s.
func retryAfter(h string) (time.Duration, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return 0, false
	}
	return min(time.Duration(n)*time.Second, 10*time.Second), true
}

// sleep waits d, and says false at once if ctx ends before.
func sleep(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// APIError is an API call the API server answered with an HTTP error: its
// status code and, when the body is a metav1.Status, the Status's reason
// and message. A 404 is ErrNotFound (errors.Is).
type APIError struct {
	Method, URL string
	StatusCode  int
	Reason      string // the Status's reason, e.g. Forbidden; "" if none
	Message     string // the Status's message, or the start of the body
}

func newAPIError(method, url string, code int, body []byte) *APIError {
	e := &APIError{Method: method, URL: url, StatusCode: code}
	var st struct {
		Kind    string `json:"kind"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		e.Reason, e.Message = st.Reason, st.Message
	} else {
		msg := strings.ToValidUTF8(strings.TrimSpace(string(body[:min(len(body), 512)])), "")
		e.Message = strings.Join(strings.Fields(msg), " ")
	}
	return e
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Reason != "" && e.Reason != strings.ReplaceAll(http.StatusText(e.StatusCode), " ", "") {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is makes a 404 ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// limiter is a token bucket: rate requests a second, bursts of burst.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// wait takes a token, waiting for it if need be; it fails at once if ctx
// would end first.
func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	d := time.Duration(0)
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d == 0 {
		return ctx.Err()
	}
	if !sleep(ctx, d) {
		l.mu.Lock()
		l.tokens++ // not used
		l.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("waiting %v would pass the deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	return nil
}
