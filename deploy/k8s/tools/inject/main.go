// Command dapr-inject does to a pod what Dapr's sidecar injector does, with the injector's own code
// (github.com/dapr/dapr/pkg/injector/patcher, the version the local stack runs), so that the test
// cluster — which has no Dapr control plane — can be shown the pod taskhost really gets.
//
// It reads manifests (the rendered chart) on stdin, takes the first Deployment's pod template,
// sets the SidecarConfig the way pkg/injector/service/pod_patch.go does with the Dapr Helm chart's
// defaults, applies the JSON patch the injector would return, and prints the resulting Pod as JSON.
//
// Built by deploy/k8s/install-tools.sh inside a copy of the dapr module (its go.mod has replace
// directives, so it cannot be built from outside).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	jsonpatch "github.com/evanphx/json-patch/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	injectorConsts "github.com/dapr/dapr/pkg/injector/consts"
	"github.com/dapr/dapr/pkg/injector/patcher"
)

func main() {
	namespace := flag.String("namespace", "default", "the pod's namespace")
	name := flag.String("name", "", "the Pod's name (default: <deployment>-injected)")
	dropAll := flag.Bool("drop-all-capabilities", false, "the injector's sidecarDropALLCapabilities (Dapr Helm value dapr_sidecar_injector.sidecarDropALLCapabilities; default false)")
	image := flag.String("sidecar-image", "ghcr.io/dapr/daprd:1.18.0", "the injector's sidecar image")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *namespace, *name, *dropAll, *image); err != nil {
		fmt.Fprintln(os.Stderr, "dapr-inject:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, namespace, name string, dropAll bool, image string) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	var deploy *appsv1.Deployment
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("reading the manifests: %w", err)
		}
		if obj["kind"] != "Deployment" {
			continue
		}
		raw, _ := json.Marshal(obj)
		deploy = &appsv1.Deployment{}
		if err := json.Unmarshal(raw, deploy); err != nil {
			return fmt.Errorf("decoding the Deployment: %w", err)
		}
		break
	}
	if deploy == nil {
		return errors.New("no Deployment in the input")
	}
	if name == "" {
		name = deploy.Name + "-injected"
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   namespace,
			Labels:      map[string]string{"app.kubernetes.io/name": "dapr-inject-check"},
			Annotations: deploy.Spec.Template.Annotations,
		},
		Spec: deploy.Spec.Template.Spec,
	}

	// As pkg/injector/service/pod_patch.go sets it, with the Dapr Helm chart's defaults
	// (runAsNonRoot and readOnlyRootFilesystem true; mTLS on; the scheduler in dapr-system, which
	// the patcher addresses as dapr-scheduler-server-a.<ns>.svc.<domain>:443; nativeSidecar off).
	sidecar := patcher.NewSidecarConfig(pod)
	sidecar.Mode = injectorConsts.ModeKubernetes
	sidecar.Namespace = namespace
	sidecar.MTLSEnabled = true
	sidecar.Identity = namespace + ":" + pod.Spec.ServiceAccountName
	sidecar.ImagePullPolicy = corev1.PullIfNotPresent
	sidecar.OperatorAddress = patcher.ServiceAPI.Address("dapr-system", "cluster.local")
	sidecar.SentryAddress = patcher.ServiceSentry.Address("dapr-system", "cluster.local")
	sidecar.RunAsNonRoot = true
	sidecar.ReadOnlyRootFilesystem = true
	sidecar.SidecarDropALLCapabilities = dropAll
	sidecar.ControlPlaneNamespace = "dapr-system"
	sidecar.ControlPlaneTrustDomain = "cluster.local"
	sidecar.SentrySPIFFEID = "spiffe://cluster.local/ns/dapr-system/dapr-sentry"
	sidecar.CurrentTrustAnchors = []byte("-----BEGIN CERTIFICATE-----\n(test trust anchors)\n-----END CERTIFICATE-----\n")
	sidecar.SchedulerEnabled = true
	sidecar.KubeClusterDomain = "cluster.local"
	sidecar.SidecarImage = image
	sidecar.GetInjectedComponentContainers = func(string, string) ([]corev1.Container, error) { return nil, nil }
	sidecar.SetFromPodAnnotations()
	if !sidecar.NeedsPatching() {
		return errors.New("the injector would not touch this pod (is dapr.io/enabled \"true\"?)")
	}
	patch, err := sidecar.GetPatch()
	if err != nil {
		return fmt.Errorf("the injector's patch: %w", err)
	}
	podJSON, err := json.Marshal(pod)
	if err != nil {
		return err
	}
	patchJSON, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	decoded, err := jsonpatch.DecodePatch(patchJSON)
	if err != nil {
		return fmt.Errorf("decoding the patch: %w", err)
	}
	patched, err := decoded.Apply(podJSON)
	if err != nil {
		return fmt.Errorf("applying the patch: %w", err)
	}
	_, err = out.Write(append(patched, '\n'))
	return err
}
