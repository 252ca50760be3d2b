package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// engine is the part of Docker's Engine API the cache uses: inspect, list
// and the event stream, over net/http. Docker's Go client did the same
// three calls but brought two megabytes of code (its OpenTelemetry
// instrumentation among them) into a daemon that idles at 20 MiB, most of
// it the binary's own pages. Paths carry no API version: the engine then
// answers in its own, and the fields read here are in every version since
// 1.22 (2016).
type engine struct {
	hc   *http.Client
	base string // scheme, host and path prefix of every request
}

// defaultHost is where Docker listens unless DOCKER_HOST says otherwise.
const defaultHost = "unix:///var/run/docker.sock"

// newEngine connects to host; "" takes DOCKER_HOST, DOCKER_CERT_PATH and
// DOCKER_TLS_VERIFY from the environment as the docker CLI does, else the
// default socket.
func newEngine(host string) (*engine, error) {
	var tlsConf *tls.Config
	if host == "" {
		host = strings.TrimSpace(os.Getenv("DOCKER_HOST"))
		if dir := os.Getenv("DOCKER_CERT_PATH"); dir != "" {
			var err error
			if tlsConf, err = tlsFromDir(dir, os.Getenv("DOCKER_TLS_VERIFY") != ""); err != nil {
				return nil, err
			}
		}
	}
	if host == "" {
		host = defaultHost
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("docker host %q: %w", host, err)
	}
	tr := &http.Transport{MaxIdleConns: 2, DisableCompression: true}
	e := &engine{hc: &http.Client{Transport: tr}}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			return nil, fmt.Errorf("docker host %q: no socket path", host)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		e.base = "http://docker"
	case "tcp", "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("docker host %q: no address", host)
		}
		scheme := "http"
		if tlsConf != nil || u.Scheme == "https" {
			scheme = "https"
			tr.TLSClientConfig = tlsConf
		}
		e.base = scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	default:
		return nil, fmt.Errorf("docker host %q: scheme %q not supported (unix, tcp, http, https)", host, u.Scheme)
	}
	return e, nil
}

// tlsFromDir is the client side of a TLS-protected engine: ca.pem,
// cert.pem and key.pem in dir; verify checks the engine's certificate.
func tlsFromDir(dir string, verify bool) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !verify}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	switch {
	case err == nil:
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("DOCKER_CERT_PATH: no certificate in %s", filepath.Join(dir, "ca.pem"))
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("DOCKER_CERT_PATH: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err == nil {
		conf.Certificates = []tls.Certificate{cert}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("DOCKER_CERT_PATH: %w", err)
	}
	return conf, nil
}

// errNoSuchContainer is the engine's 404 on a container path.
var errNoSuchContainer = errors.New("no such container")

// get sends a GET for path and returns the response of a 2xx; the caller
// closes its body. Any other status is an error carrying the engine's message.
func (e *engine) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "oomtrace")
	resp, err := e.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var body struct{ Message string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %s", errNoSuchContainer, body.Message)
	}
	return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body.Message)
}

// getJSON decodes a 2xx response to path into v.
func (e *engine) getJSON(ctx context.Context, path string, v any) error {
	resp, err := e.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// inspectResponse is what the cache reads of GET /containers/{id}/json.
type inspectResponse struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Image  string `json:"Image"` // the image id
	Config *struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	HostConfig *struct {
		Memory int64 `json:"Memory"`
	} `json:"HostConfig"`
}

func (e *engine) inspect(ctx context.Context, id string) (inspectResponse, error) {
	var r inspectResponse
	err := e.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", &r)
	return r, err
}

// containerSummary is one container of GET /containers/json.
type containerSummary struct {
	ID      string            `json:"Id"`
	Names   []string          `json:"Names"`
	Image   string            `json:"Image"`
	ImageID string            `json:"ImageID"`
	Labels  map[string]string `json:"Labels"`
}

// list lists every container, stopped ones too.
func (e *engine) list(ctx context.Context) ([]containerSummary, error) {
	var r []containerSummary
	err := e.getJSON(ctx, "/containers/json?all=1", &r)
	return r, err
}

// eventMessage is one container event of GET /events.
type eventMessage struct {
	Action string     `json:"Action"`
	Actor  eventActor `json:"Actor"`
}

// eventActor is the container an event is about; Docker puts its labels
// in Attributes, beside the event's own keys (eventKeys).
type eventActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// Container events the cache follows.
const (
	actionCreate  = "create"
	actionStart   = "start"
	actionRename  = "rename"
	actionUpdate  = "update"
	actionDestroy = "destroy"
)

// events subscribes to the container events the cache follows. It returns
// once the engine has answered, so an event after that is in the stream.
// The stream ends, with its error on errs, when ctx ends or the engine goes.
func (e *engine) events(ctx context.Context) (msgs <-chan eventMessage, errs <-chan error, err error) {
	filters, _ := json.Marshal(map[string][]string{
		"type":  {"container"},
		"event": {actionCreate, actionStart, actionRename, actionUpdate, actionDestroy},
	})
	resp, err := e.get(ctx, "/events?filters="+url.QueryEscape(string(filters)))
	if err != nil {
		return nil, nil, err
	}
	m, ec := make(chan eventMessage), make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var msg eventMessage
			if err := dec.Decode(&msg); err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("event stream closed")
				}
				ec <- err
				return
			}
			select {
			case m <- msg:
			case <-ctx.Done():
				ec <- ctx.Err()
				return
			}
		}
	}()
	return m, ec, nil
}

func (e *engine) close() { e.hc.CloseIdleConnections() }
