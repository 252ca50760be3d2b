package k8sevents

import (
	"errors"
	"fmt"
	"io/fs"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// InCluster is a client for the API server of the cluster this process
// runs in, as the pod's service account (rest.InClusterConfig). Outside a
// pod, and in a pod without a service account token, it says so.
func InCluster() (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	switch {
	case errors.Is(err, rest.ErrNotInCluster):
		return nil, fmt.Errorf("k8sevents: not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset): Kubernetes Events need the in-cluster service account: %w", err)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("k8sevents: in a Kubernetes pod without a service account token (automountServiceAccountToken: false?): %w", err)
	case err != nil:
		return nil, fmt.Errorf("k8sevents: in-cluster configuration: %w", err)
	}
	cfg.UserAgent = "oomtrace"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8sevents: in-cluster client: %w", err)
	}
	return client, nil
}
