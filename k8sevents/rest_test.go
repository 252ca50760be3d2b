package k8sevents

// The REST client InCluster returns, against httptest.NewTLSServer: a
// stand-in for the API server, which cannot run here. The test server
// records each request and answers as the API server does (201/200 with
// the object, 404/403/429 with a metav1.Status); the tests check what the
// client sends (method, path, headers, the bearer token, a body that is a
// core/v1 Event or the Poster's merge patch, decoded strictly) and how it
// takes the answers. The API server's own authentication, authorization
// and validation are not exercised.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// request is what the test server saw of one request.
type request struct {
	method, path                     string
	auth, contentType, accept, agent string
	body                             []byte
}

type apiServer struct {
	t         *testing.T
	srv       *httptest.Server
	tokenPath string
	caPath    string

	mu     sync.Mutex
	reqs   []request
	answer func(r request) (int, http.Header, any) // nil: 201 to POST, 200 to PATCH
}

// newAPIServer starts the stand-in API server and writes a token file
// ("token-1") and its CA certificate; start sets up the server (nil: TLS
// as httptest gives it).
func newAPIServer(t *testing.T, start func(*httptest.Server)) *apiServer {
	t.Helper()
	s := &apiServer{t: t}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the request: %v", err)
		}
		req := request{
			method: r.Method, path: r.URL.EscapedPath(),
			auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"),
			accept: r.Header.Get("Accept"), agent: r.Header.Get("User-Agent"), body: body,
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		answer := s.answer
		s.mu.Unlock()
		code, hdr, obj := http.StatusOK, http.Header{}, any(map[string]any{"kind": "Event", "apiVersion": "v1"})
		if r.Method == http.MethodPost {
			code = http.StatusCreated
		}
		if answer != nil {
			code, hdr, obj = answer(req)
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if b, ok := obj.([]byte); ok {
			w.Write(b)
		} else {
			json.NewEncoder(w).Encode(obj)
		}
	})
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused TLS handshakes
	if start != nil {
		start(s.srv)
	} else {
		s.srv.StartTLS()
	}
	t.Cleanup(s.srv.Close)
	dir := t.TempDir()
	s.tokenPath = filepath.Join(dir, "token")
	s.caPath = filepath.Join(dir, "ca.crt")
	s.setToken("token-1\n")
	writePEM(t, s.caPath, s.srv.Certificate().Raw)
	return s
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// setToken rewrites the token file as the kubelet does: a new file
// renamed over the old.
func (s *apiServer) setToken(tok string) {
	s.t.Helper()
	tmp := s.tokenPath + ".new"
	if err := os.WriteFile(tmp, []byte(tok), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.tokenPath); err != nil {
		s.t.Fatal(err)
	}
}

func (s *apiServer) setAnswer(f func(request) (int, http.Header, any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *apiServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// client is a REST client on the server, with the server's CA.
func (s *apiServer) client() *restClient {
	s.t.Helper()
	host, port, err := net.SplitHostPort(s.srv.Listener.Addr().String())
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := newRESTClient(host, port, s.tokenPath, s.caPath)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func status(code int, reason, msg string) any {
	return map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The Poster on the REST client: a kill creates the Event (POST, the Event
// as JSON), the next window's kill patches it (PATCH, a merge patch), each
// with the service account's token.
func TestRESTCreateAndPatch(t *testing.T) {
	s := newAPIServer(t, nil)
	clock := &fakeClock{t: t0}
	var errs []error
	var mu sync.Mutex
	p := New(s.client(), Options{NodeName: "node-7", Now: clock.Now, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}})
	go p.Run(context.Background())
	defer p.Close()
	flush := func() {
		t.Helper()
		if err := p.Flush(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	k := kill("web-0", 4242)
	k.Time = t0.Add(-1500 * time.Millisecond)
	p.Kill(k)
	flush()
	clock.Add(time.Minute)
	p.Kill(kill("web-0", 4343))
	flush()

	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want a POST and a PATCH: %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.auth != "Bearer token-1" || r.agent != "oomtrace" || r.accept != "application/json" {
			t.Errorf("%s %s: Authorization %q User-Agent %q Accept %q, want the token, oomtrace, JSON", r.method, r.path, r.auth, r.agent, r.accept)
		}
	}
	create := reqs[0]
	if create.method != "POST" || create.path != "/api/v1/namespaces/shop/events" || create.contentType != "application/json" {
		t.Errorf("create: %s %s (%s), want POST /api/v1/namespaces/shop/events (application/json)", create.method, create.path, create.contentType)
	}
	ev, err := coreEvent(create.body)
	if err != nil {
		t.Fatal(err)
	}
	wantRef := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "shop", Name: "web-0", UID: "uid-web-0", FieldPath: "spec.containers{app}"}
	if ev.APIVersion != "v1" || ev.Kind != "Event" || ev.Namespace != "shop" || !strings.HasPrefix(ev.Name, "web-0.") ||
		ev.InvolvedObject != wantRef || ev.Reason != "OOMKilled" || ev.Type != corev1.EventTypeWarning || ev.Count != 1 ||
		ev.Source != (corev1.EventSource{Component: "oomtrace", Host: "node-7"}) ||
		ev.ReportingController != "oomtrace" || ev.ReportingInstance != "node-7" ||
		!ev.FirstTimestamp.Time.Equal(t0.Add(-2*time.Second)) || !ev.LastTimestamp.Time.Equal(ev.FirstTimestamp.Time) ||
		!strings.Contains(ev.Message, "web[4242]") {
		t.Errorf("created Event %s", create.body)
	}
	patch := reqs[1]
	if patch.method != "PATCH" || patch.path != "/api/v1/namespaces/shop/events/"+ev.Name || patch.contentType != "application/merge-patch+json" {
		t.Errorf("patch: %s %s (%s), want PATCH of the created Event (application/merge-patch+json)", patch.method, patch.path, patch.contentType)
	}
	if err := checkMergePatch(patch.body); err != nil {
		t.Fatal(err)
	}
	var pv struct {
		Count         int32       `json:"count"`
		LastTimestamp metav1.Time `json:"lastTimestamp"`
		Message       string      `json:"message"`
	}
	json.Unmarshal(patch.body, &pv)
	if pv.Count != 2 || !pv.LastTimestamp.Time.Equal(t0.Add(time.Minute)) || !strings.Contains(pv.Message, "web[4343]") {
		t.Errorf("patch %s: want count 2, the second kill's time and message", patch.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
}

// A 404 on patch is ErrNotFound, and the Poster creates the Event again.
func TestRESTPatchNotFound(t *testing.T) {
	s := newAPIServer(t, nil)
	c := s.client()
	s.setAnswer(func(r request) (int, http.Header, any) {
		if r.method == "PATCH" {
			return 404, nil, status(404, "NotFound", `events "web-0.1" not found`)
		}
		return 201, nil, map[string]any{}
	})
	err := c.PatchEvent(ctxT(t), "shop", "web-0.1", []byte(`{"count":2}`))
	var ae *APIError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ae) || ae.StatusCode != 404 || !strings.Contains(err.Error(), `events "web-0.1" not found`) {
		t.Errorf("404: %v, want ErrNotFound with the Status message", err)
	}

	clock := &fakeClock{t: t0}
	p := New(c, Options{Now: clock.Now, Forget: 3 * time.Hour})
	go p.Run(context.Background())
	defer p.Close()
	p.Kill(kill("a-0", 1))
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	p.Kill(kill("a-0", 2))
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, r := range s.requests()[1:] {
		verbs = append(verbs, r.method)
	}
	if strings.Join(verbs, " ") != "POST PATCH POST" {
		t.Errorf("requests %v, want POST PATCH POST (created again)", verbs)
	}
	if st := p.Stats(); st.Created != 2 || st.Errors != 0 {
		t.Errorf("stats %+v, want 2 created, no error", st)
	}
}

// An error is the API server's Status message; a body that is no Status
// is quoted.
func TestRESTErrors(t *testing.T) {
	s := newAPIServer(t, nil)
	c := s.client()
	const forbidden = `events is forbidden: User "system:serviceaccount:oomtrace:oomtrace" cannot create resource "events" in API group "" in the namespace "shop"`
	s.setAnswer(func(request) (int, http.Header, any) { return 403, nil, status(403, "Forbidden", forbidden) })
	ev := New(nil, Options{}).event(&entry{namespace: "shop", pod: "a-0", first: t0, last: t0, message: "m"}, 1)
	err := c.CreateEvent(ctxT(t), ev)
	var ae *APIError
	if err == nil || !strings.Contains(err.Error(), forbidden) || !strings.Contains(err.Error(), "403") ||
		!errors.As(err, &ae) || ae.Reason != "Forbidden" || errors.Is(err, ErrNotFound) {
		t.Errorf("403: %v, want an error naming the Status message", err)
	} else {
		t.Logf("403: %v", err)
	}

	s.setAnswer(func(request) (int, http.Header, any) { return 500, nil, []byte("etcd\ndown\n") })
	if err := c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "HTTP 500 Internal Server Error: etcd down") {
		t.Errorf("500: %v, want the body in the error", err)
	}
	if err := c.CreateEvent(ctxT(t), &Event{}); err == nil {
		t.Error("an Event without namespace: no error")
	}
}

// Bound service account tokens rotate: the file is read again after a
// minute, and at once on a 401.
func TestRESTTokenRotation(t *testing.T) {
	s := newAPIServer(t, nil)
	c := s.client()
	clock := &fakeClock{t: t0}
	c.now, c.tokenRead = clock.Now, t0
	var validTok atomic.Value
	validTok.Store("token-1")
	setValid := func(tok string) { validTok.Store(tok) }
	s.setAnswer(func(r request) (int, http.Header, any) {
		if r.auth != "Bearer "+validTok.Load().(string) {
			return 401, nil, status(401, "Unauthorized", "Unauthorized")
		}
		return 200, nil, map[string]any{}
	})
	patch := func() error { return c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{"count":2}`)) }
	auths := func() []string {
		var a []string
		for _, r := range s.requests() {
			a = append(a, strings.TrimPrefix(r.auth, "Bearer "))
		}
		return a
	}

	if err := patch(); err != nil {
		t.Fatal(err)
	}
	s.setToken("token-2") // rotated; the old token still valid for a while
	if err := patch(); err != nil {
		t.Fatal(err)
	}
	clock.Add(tokenMaxAge)
	setValid("token-2")
	if err := patch(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(auths(), " "); got != "token-1 token-1 token-2" {
		t.Errorf("tokens sent %s, want token-1 until a minute has passed, then token-2", got)
	}

	// Rotated and the old token refused at once: the 401 reads the file.
	s.setToken("token-3")
	setValid("token-3")
	if err := patch(); err != nil {
		t.Errorf("after the 401: %v", err)
	}
	if got := strings.Join(auths()[3:], " "); got != "token-2 token-3" {
		t.Errorf("tokens sent %s, want token-2 refused, then token-3", got)
	}

	// A 401 with the file unchanged is an error, after one request.
	setValid("another")
	err := patch()
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 401 || len(auths()) != 6 {
		t.Errorf("401 with the same token: %v after %d requests, want the 401 after one", err, len(auths())-5)
	}

	// A token file gone keeps the token read.
	os.Remove(s.tokenPath)
	clock.Add(tokenMaxAge)
	setValid("token-3")
	if err := patch(); err != nil {
		t.Errorf("the token file gone: %v, want the last token used", err)
	}
}

// The API server's certificate is checked against the service account's
// CA; TLS before 1.2 is refused.
func TestRESTTLS(t *testing.T) {
	s := newAPIServer(t, nil)
	other := filepath.Join(t.TempDir(), "ca.crt")
	writePEM(t, other, selfSignedCA(t))
	host, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	c, err := newRESTClient(host, port, s.tokenPath, other)
	if err != nil {
		t.Fatal(err)
	}
	err = c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("another CA: %v, want x509.UnknownAuthorityError", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("another CA: %d requests reached the server", n)
	}
	if err := s.client().PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err != nil {
		t.Errorf("the right CA: %v", err)
	}

	old := newAPIServer(t, func(srv *httptest.Server) {
		srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
		srv.StartTLS()
	})
	if err := old.client().PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err == nil || len(old.requests()) != 0 {
		t.Errorf("a TLS 1.1 server: %v, want refused", err)
	} else {
		t.Logf("TLS 1.1: %v", err)
	}
}

func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// KUBERNETES_SERVICE_HOST is an IPv6 address without brackets in an IPv6
// cluster.
func TestRESTIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	s := newAPIServer(t, func(srv *httptest.Server) {
		srv.Listener.Close()
		srv.Listener = l
		srv.StartTLS()
	})
	c, err := newRESTClient("::1", strconv.Itoa(s.srv.Listener.Addr().(*net.TCPAddr).Port), s.tokenPath, s.caPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.base, "https://[::1]:") {
		t.Errorf("base %s", c.base)
	}
	if err := c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err != nil {
		t.Error(err)
	}
}

// A 429 with Retry-After (the API server's priority and fairness) is
// tried again; without it, or past the retries, it is the error.
func TestRESTRetryAfter(t *testing.T) {
	s := newAPIServer(t, nil)
	c := s.client()
	var n atomic.Int32
	s.setAnswer(func(request) (int, http.Header, any) {
		n.Add(1)
		if n.Load() == 1 {
			return 429, http.Header{"Retry-After": {"0"}}, status(429, "TooManyRequests", "too many requests, please try again later")
		}
		return 200, nil, map[string]any{}
	})
	if err := c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err != nil || n.Load() != 2 {
		t.Errorf("429 then 200: %v after %d requests, want success after 2", err, n.Load())
	}
	n.Store(0)
	s.setAnswer(func(request) (int, http.Header, any) {
		n.Add(1)
		return 429, http.Header{"Retry-After": {"0"}}, status(429, "TooManyRequests", "too many requests")
	})
	if err := c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err == nil || n.Load() != 1+maxRetryAfter {
		t.Errorf("429 always: %v after %d requests, want the error after %d", err, n.Load(), 1+maxRetryAfter)
	}
	n.Store(0)
	s.setAnswer(func(request) (int, http.Header, any) {
		n.Add(1)
		return 429, nil, status(429, "TooManyRequests", "too many requests")
	})
	if err := c.PatchEvent(ctxT(t), "shop", "a-0.1", []byte(`{}`)); err == nil || n.Load() != 1 {
		t.Errorf("429 without Retry-After: %v after %d requests, want the error after 1", err, n.Load())
	}
	n.Store(0)
	s.setAnswer(func(request) (int, http.Header, any) {
		n.Add(1)
		return 429, http.Header{"Retry-After": {"5"}}, status(429, "TooManyRequests", "too many requests")
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.PatchEvent(ctx, "shop", "a-0.1", []byte(`{}`)); err == nil || n.Load() != 1 {
		t.Errorf("Retry-After past the deadline: %v after %d requests, want the error at once", err, n.Load())
	}
}

// The client-side rate limit paces bursts, and gives up at once when the
// deadline would pass.
func TestRESTRateLimit(t *testing.T) {
	l := newLimiter(20, 2)
	start := time.Now()
	for range 4 {
		if err := l.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("4 requests at 20/s with a burst of 2 in %v, want about 100ms", d)
	}
	l = newLimiter(0.1, 1)
	l.wait(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if err := l.wait(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Errorf("wait past the deadline: %v after %v, want DeadlineExceeded at once", err, time.Since(start))
	}
}

func TestNewRESTClientErrors(t *testing.T) {
	s := newAPIServer(t, nil)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "bad.crt")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name, token, ca, want string
	}{
		{"no token", filepath.Join(dir, "none"), s.caPath, "without a service account token"},
		{"empty token", empty, s.caPath, "is empty"},
		{"no CA", s.tokenPath, filepath.Join(dir, "none"), "CA certificate"},
		{"bad CA", s.tokenPath, notPEM, "no PEM certificate"},
	} {
		if _, err := newRESTClient("10.96.0.1", "443", tc.token, tc.ca); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// The Event's JSON is core/v1 Event's: the Poster's Event decodes strictly
// into it, with every field, and its times go as metav1.Time's, to the
// second in UTC.
func TestEventWireFormat(t *testing.T) {
	p := New(nil, Options{NodeName: "node-7", Now: func() time.Time { return t0 }})
	paris := time.FixedZone("CET", 3600)
	e := &entry{namespace: "shop", pod: "web-0", uid: "uid-web-0", fieldPath: "spec.containers{app}",
		first: t0.Add(700 * time.Millisecond).In(paris), last: t0.Add(90 * time.Second).In(paris), message: "m"}
	b, err := json.Marshal(p.event(e, 7))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := coreEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	want := corev1.Event{
		TypeMeta:       metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     metav1.ObjectMeta{Name: ev.Name, Namespace: "shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "shop", Name: "web-0", UID: "uid-web-0", FieldPath: "spec.containers{app}"},
		Reason:         "OOMKilled", Message: "m", Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "oomtrace", Host: "node-7"},
		FirstTimestamp: metav1.NewTime(t0), LastTimestamp: metav1.NewTime(t0.Add(90 * time.Second)),
		Count: 7, ReportingController: "oomtrace", ReportingInstance: "node-7",
	}
	wantJSON, _ := json.Marshal(&want)
	if got, _ := json.Marshal(ev); string(got) != string(wantJSON) {
		t.Errorf("Event\n%s\nwant\n%s", got, wantJSON)
	}
	for _, s := range []string{`"firstTimestamp":"2026-03-01T12:00:00Z"`, `"lastTimestamp":"2026-03-01T12:01:30Z"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s: want %s", b, s)
		}
	}

	var zero Time
	if b, _ := json.Marshal(zero); string(b) != "null" {
		t.Errorf("zero Time: %s, want null", b)
	}
	var back struct{ T, Z Time }
	if err := json.Unmarshal([]byte(`{"T":"2026-03-01T13:00:00+01:00","Z":null}`), &back); err != nil ||
		!back.T.Equal(t0) || back.T.Location() != time.UTC || !back.Z.IsZero() {
		t.Errorf("Time decoded: %v %v (%v), want %v and zero", back.T, back.Z, err, t0)
	}
}
