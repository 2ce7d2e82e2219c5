package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/img2vid/img2vid"
	"github.com/img2vid/img2vid/jobs"
)

// manifests is every object of deploy/kubernetes, decoded strictly.
type manifests struct {
	namespaces   []*corev1.Namespace
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	budgets      []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
	scaled       []*scaledObject
	// secrets are the kustomizations' secret generators, by name.
	secrets map[string]secretGenerator
}

// secretGenerator is one entry of a kustomization's secretGenerator.
type secretGenerator struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace"`
	Files     []string `json:"files"`
}

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// manifests use; decoding into it strictly refuses any other field.
type scaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval int `json:"pollingInterval"`
		CooldownPeriod  int `json:"cooldownPeriod"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// kedaJetStreamFields are the metadata fields of KEDA's nats-jetstream
// trigger (keda.sh/docs/scalers/nats-jetstream).
var kedaJetStreamFields = []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer",
	"lagThreshold", "activationLagThreshold", "useHttps"}

// kustomization is the part of a kustomization.yaml the manifests use.
type kustomization struct {
	APIVersion      string            `json:"apiVersion"`
	Kind            string            `json:"kind"`
	Resources       []string          `json:"resources"`
	SecretGenerator []secretGenerator `json:"secretGenerator"`
}

// load reads the kustomization in dir and every file it lists (recursing
// into listed folders), decoding each document strictly into its type.
func load(t *testing.T, dir string, m *manifests) {
	t.Helper()
	var k kustomization
	strict(t, filepath.Join(dir, "kustomization.yaml"), mustRead(t, filepath.Join(dir, "kustomization.yaml")), &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: apiVersion %q kind %q", dir, k.APIVersion, k.Kind)
	}
	for _, g := range k.SecretGenerator {
		if m.secrets == nil {
			m.secrets = map[string]secretGenerator{}
		}
		m.secrets[g.Name] = g
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		path := filepath.Join(dir, r)
		if info, err := os.Stat(path); err != nil {
			t.Fatalf("%s lists %s: %v", dir, r, err)
		} else if info.IsDir() {
			load(t, path, m)
			continue
		}
		listed[filepath.Base(path)] = true
		for i, doc := range splitDocuments(mustRead(t, path)) {
			decode(t, fmt.Sprintf("%s (document %d)", path, i+1), doc, m)
		}
	}
	// A manifest left out of the kustomization is never applied.
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !listed[base] {
			t.Errorf("%s is not listed in %s/kustomization.yaml", f, dir)
		}
	}
}

// splitDocuments splits a multi-document YAML file.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(s, "")
}

// decode decodes one document into the type its apiVersion and kind name.
func decode(t *testing.T, where string, doc []byte, m *manifests) {
	t.Helper()
	var head metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	switch gvk := head.APIVersion + " " + head.Kind; gvk {
	case "v1 Namespace":
		m.namespaces = append(m.namespaces, strictAs[corev1.Namespace](t, where, doc))
	case "v1 ConfigMap":
		m.configMaps = append(m.configMaps, strictAs[corev1.ConfigMap](t, where, doc))
	case "v1 Service":
		m.services = append(m.services, strictAs[corev1.Service](t, where, doc))
	case "apps/v1 Deployment":
		m.deployments = append(m.deployments, strictAs[appsv1.Deployment](t, where, doc))
	case "apps/v1 StatefulSet":
		m.statefulSets = append(m.statefulSets, strictAs[appsv1.StatefulSet](t, where, doc))
	case "policy/v1 PodDisruptionBudget":
		m.budgets = append(m.budgets, strictAs[policyv1.PodDisruptionBudget](t, where, doc))
	case "networking.k8s.io/v1 NetworkPolicy":
		m.policies = append(m.policies, strictAs[networkingv1.NetworkPolicy](t, where, doc))
	case "keda.sh/v1alpha1 ScaledObject":
		m.scaled = append(m.scaled, strictAs[scaledObject](t, where, doc))
	default:
		t.Fatalf("%s: %s is not a kind this test knows; add it to decode", where, gvk)
	}
}

func strictAs[T any](t *testing.T, where string, doc []byte) *T {
	t.Helper()
	v := new(T)
	strict(t, where, doc, v)
	return v
}

// strict decodes YAML into v, refusing unknown and duplicate fields.
func strict(t *testing.T, where string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// settingsRead is every environment variable img2vid reads: the ones its
// flags are bound to in cmd/img2vid (the binder's str, int, int64, dur and
// list calls, whose third argument names the variable), and the limits'
// from img2vid.LimitTable.
func settingsRead(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, s := range img2vid.LimitTable {
		names[s.Env()] = true
	}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("../cmd/img2vid/*.go")
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 3 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !slices.Contains([]string{"str", "int", "int64", "dur", "list"}, sel.Sel.Name) {
				return true
			}
			if lit, ok := call.Args[2].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && v != "" {
					names[v] = true
				}
			}
			return true
		})
	}
	// A sanity floor: the parse found the binder's calls at all.
	for _, want := range []string{"IMG2VID_NATS_URL", "IMG2VID_ROLE", "IMG2VID_DEVICE", "SERVER_PORT"} {
		if !names[want] {
			t.Fatalf("the settings found in cmd/img2vid lack %s; has the binder changed? found %v", want, names)
		}
	}
	return names
}

// servedPaths is every path the server documents in its OpenAPI document
// (which the server's own tests hold to its routes).
func servedPaths(t *testing.T) map[string]bool {
	t.Helper()
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(mustRead(t, "../server/openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for p := range doc.Paths {
		paths[p] = true
	}
	return paths
}

// queueNames are the names of the work-queue stream and of its durable
// consumer, read from a job system the jobs package has really created.
func queueNames(t *testing.T) (stream, consumer string) {
	t.Helper()
	e, err := jobs.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sys, err := jobs.Open(ctx, e.Conn, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	js, err := jetstream.New(e.Conn)
	if err != nil {
		t.Fatal(err)
	}
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if info.Config.Retention != jetstream.WorkQueuePolicy {
			continue
		}
		if stream != "" {
			t.Fatalf("two work-queue streams: %s and %s", stream, info.Config.Name)
		}
		stream = info.Config.Name
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		for name := range s.ConsumerNames(ctx).Name() {
			if consumer != "" {
				t.Fatalf("stream %s has two consumers: %s and %s", stream, consumer, name)
			}
			consumer = name
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	if stream == "" || consumer == "" {
		t.Fatalf("no work-queue stream with a consumer (stream %q, consumer %q)", stream, consumer)
	}
	return stream, consumer
}

// dockerfile is what the manifests must agree with in the Dockerfile: the
// uid each image runs as and the image's work folder.
type dockerfile struct {
	img2vidUID, natsUID int64
	workDir             string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b := string(mustRead(t, "../Dockerfile"))
	uid := func(user string) int64 {
		m := regexp.MustCompile(`useradd --uid (\d+) --gid ` + user + ` `).FindStringSubmatch(b)
		if m == nil {
			t.Fatalf("Dockerfile: no useradd of %s", user)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	m := regexp.MustCompile(`IMG2VID_WORK_DIR=(\S+)`).FindStringSubmatch(b)
	if m == nil {
		t.Fatal("Dockerfile: no IMG2VID_WORK_DIR")
	}
	return dockerfile{img2vidUID: uid("img2vid"), natsUID: uid("nats"), workDir: m[1]}
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// podsOf returns the name and pod template of every workload.
func (m *manifests) workloads() map[string]*corev1.PodTemplateSpec {
	w := map[string]*corev1.PodTemplateSpec{}
	for _, d := range m.deployments {
		w["Deployment "+d.Name] = &d.Spec.Template
	}
	for _, s := range m.statefulSets {
		w["StatefulSet "+s.Name] = &s.Spec.Template
	}
	return w
}

// containerPort finds the port a Service's targetPort names in a pod.
func containerPort(pod *corev1.PodTemplateSpec, target intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if (target.Type == intstr.String && p.Name == target.StrVal) ||
				(target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return p, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

func TestKubernetesManifests(t *testing.T) {
	var m manifests
	load(t, "kubernetes/keda", &m)
	settings := settingsRead(t)
	paths := servedPaths(t)
	df := readDockerfile(t)
	if len(m.namespaces) != 1 {
		t.Fatalf("%d namespaces, want 1", len(m.namespaces))
	}
	ns := m.namespaces[0].Name
	objects := map[string]metav1.ObjectMeta{}
	add := func(kind string, meta metav1.ObjectMeta) {
		key := kind + " " + meta.Name
		if _, dup := objects[key]; dup {
			t.Errorf("%s is defined twice", key)
		}
		objects[key] = meta
		if meta.Namespace != ns {
			t.Errorf("%s is in namespace %q, not %q", key, meta.Namespace, ns)
		}
	}
	for _, o := range m.configMaps {
		add("ConfigMap", o.ObjectMeta)
	}
	for _, o := range m.services {
		add("Service", o.ObjectMeta)
	}
	for _, o := range m.deployments {
		add("Deployment", o.ObjectMeta)
	}
	for _, o := range m.statefulSets {
		add("StatefulSet", o.ObjectMeta)
	}
	for _, o := range m.budgets {
		add("PodDisruptionBudget", o.ObjectMeta)
	}
	for _, o := range m.policies {
		add("NetworkPolicy", o.ObjectMeta)
	}
	for _, o := range m.scaled {
		add("ScaledObject", o.Metadata)
	}
	workloads := m.workloads()

	t.Run("selectors match their pods", func(t *testing.T) {
		check := func(what string, sel *metav1.LabelSelector, pod *corev1.PodTemplateSpec) {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil || s.Empty() {
				t.Errorf("%s: selector %v: %v", what, sel, err)
				return
			}
			if !s.Matches(labels.Set(pod.Labels)) {
				t.Errorf("%s: selector %s does not match its pods' labels %v", what, s, pod.Labels)
			}
		}
		for _, d := range m.deployments {
			check("Deployment "+d.Name, d.Spec.Selector, &d.Spec.Template)
		}
		for _, s := range m.statefulSets {
			check("StatefulSet "+s.Name, s.Spec.Selector, &s.Spec.Template)
		}
		for _, b := range m.budgets {
			s, _ := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			n := 0
			for _, pod := range workloads {
				if s.Matches(labels.Set(pod.Labels)) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("PodDisruptionBudget %s selects %d workloads, want 1", b.Name, n)
			}
		}
	})

	t.Run("services reach container ports", func(t *testing.T) {
		for _, svc := range m.services {
			sel := labels.SelectorFromSet(svc.Spec.Selector)
			var pods []*corev1.PodTemplateSpec
			for _, pod := range workloads {
				if len(svc.Spec.Selector) > 0 && sel.Matches(labels.Set(pod.Labels)) {
					pods = append(pods, pod)
				}
			}
			if len(pods) != 1 {
				t.Errorf("Service %s selects %d workloads, want 1", svc.Name, len(pods))
				continue
			}
			for _, p := range svc.Spec.Ports {
				target := p.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(p.Port)
				}
				if _, ok := containerPort(pods[0], target); !ok {
					t.Errorf("Service %s port %s: target %s is no container port of its pods", svc.Name, p.Name, target.String())
				}
			}
		}
	})

	// The img2vid containers: the API Deployment and the worker's.
	img2vidPods := map[string]*corev1.PodTemplateSpec{}
	roles := map[string]string{}
	for _, d := range m.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		role, ok := env(c, "IMG2VID_ROLE")
		if !ok {
			t.Fatalf("Deployment %s: no IMG2VID_ROLE", d.Name)
		}
		img2vidPods[d.Name] = &d.Spec.Template
		roles[role] = d.Name
	}
	if roles["api"] == "" || roles["worker"] == "" || len(roles) != 2 {
		t.Fatalf("roles %v: want one api and one worker Deployment", roles)
	}
	natsSet := m.statefulSets[0]
	var natsClient, natsHeadless *corev1.Service
	for _, svc := range m.services {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(natsSet.Spec.Template.Labels)) {
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				natsHeadless = svc
			} else {
				natsClient = svc
			}
		}
	}
	if natsClient == nil || natsHeadless == nil {
		t.Fatal("the NATS StatefulSet needs a client Service and a headless one")
	}

	t.Run("img2vid pods", func(t *testing.T) {
		for name, pod := range img2vidPods {
			spec := pod.Spec
			if len(spec.Containers) != 1 {
				t.Errorf("%s: %d containers, want 1", name, len(spec.Containers))
				continue
			}
			c := spec.Containers[0]
			for _, e := range c.Env {
				if !settings[e.Name] {
					t.Errorf("%s: env %s is not a setting img2vid reads", name, e.Name)
				}
			}
			if !slices.Equal(c.Args, []string{"serve"}) {
				t.Errorf("%s: args %v, want [serve]", name, c.Args)
			}
			for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s: no HTTP %s probe", name, what)
					continue
				}
				if path, _, _ := strings.Cut(p.HTTPGet.Path, "?"); !paths[path] {
					t.Errorf("%s: %s probe on %s, which the server does not serve", name, what, p.HTTPGet.Path)
				}
				if _, ok := containerPort(pod, p.HTTPGet.Port); !ok {
					t.Errorf("%s: %s probe port %s is no container port", name, what, p.HTTPGet.Port.String())
				}
			}
			if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s: readiness on %s, want /readyz (it says when NATS or ffmpeg cannot be used)", name, c.ReadinessProbe.HTTPGet.Path)
			}
			// The image's user and read-only root.
			psc, sc := spec.SecurityContext, c.SecurityContext
			if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != df.img2vidUID || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Errorf("%s: pod must run as non-root uid %d, the image's user", name, df.img2vidUID)
			}
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: container must have a read-only root and no privilege escalation", name)
			}
			mounts := map[string]string{}
			for _, vm := range c.VolumeMounts {
				mounts[vm.MountPath] = vm.Name
			}
			for _, dir := range []string{"/tmp", df.workDir} {
				vol := mounts[dir]
				ok := false
				for _, v := range spec.Volumes {
					ok = ok || (v.Name == vol && v.EmptyDir != nil)
				}
				if !ok {
					t.Errorf("%s: %s must be an emptyDir volume (the root is read-only)", name, dir)
				}
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: needs CPU and memory requests and a memory limit", name)
			}
			// Connected to the NATS Service, with the stream replicated
			// on every NATS server.
			raw, _ := env(c, "IMG2VID_NATS_URL")
			for _, u := range strings.Split(raw, ",") {
				parsed, err := url.Parse(strings.TrimSpace(u))
				if err != nil {
					t.Errorf("%s: IMG2VID_NATS_URL %q: %v", name, u, err)
					continue
				}
				host, port, _ := net.SplitHostPort(parsed.Host)
				if !slices.Contains([]string{natsClient.Name, natsClient.Name + "." + ns, natsClient.Name + "." + ns + ".svc.cluster.local"}, host) ||
					!slices.ContainsFunc(natsClient.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port && p.Name == "client" }) {
					t.Errorf("%s: IMG2VID_NATS_URL %s is not the NATS client Service %s's client port", name, u, natsClient.Name)
				}
			}
			if r, _ := env(c, "IMG2VID_NATS_REPLICAS"); r != strconv.Itoa(int(*natsSet.Spec.Replicas)) {
				t.Errorf("%s: IMG2VID_NATS_REPLICAS=%q, want %d (one copy on each NATS server)", name, r, *natsSet.Spec.Replicas)
			}
			// Killed only after the grace period and the last responses.
			grace := 20 * time.Second
			if g, ok := env(c, "IMG2VID_GRACE"); ok {
				d, err := time.ParseDuration(g)
				if err != nil {
					t.Errorf("%s: IMG2VID_GRACE=%q: %v", name, g, err)
				}
				grace = d
			}
			var pause time.Duration
			if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
				pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
			}
			if tg := spec.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second <= pause+grace+5*time.Second {
				t.Errorf("%s: terminationGracePeriodSeconds must exceed the preStop pause (%s) + IMG2VID_GRACE (%s) + 5 s", name, pause, grace)
			}
		}
	})

	t.Run("worker on a GPU", func(t *testing.T) {
		c := img2vidPods[roles["worker"]].Spec.Containers[0]
		one := resource.MustParse("1")
		for what, list := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
			if q, ok := list["nvidia.com/gpu"]; !ok || q.Cmp(one) != 0 {
				t.Errorf("worker %s: nvidia.com/gpu %v, want 1", what, list["nvidia.com/gpu"])
			}
		}
		if d, _ := env(c, "IMG2VID_DEVICE"); d != "cuda" && d != "auto" {
			t.Errorf("worker: IMG2VID_DEVICE=%q, want cuda or auto", d)
		}
		if !strings.HasSuffix(c.Image, ":gpu") {
			t.Errorf("worker image %s, want the GPU image (tag gpu)", c.Image)
		}
		api := img2vidPods[roles["api"]].Spec.Containers[0]
		if _, ok := api.Resources.Requests["nvidia.com/gpu"]; ok {
			t.Error("the API replicas request a GPU they never use")
		}
	})

	t.Run("NATS cluster", func(t *testing.T) {
		if *natsSet.Spec.Replicas != 3 || natsSet.Spec.ServiceName != natsHeadless.Name {
			t.Errorf("StatefulSet %s: %d replicas, service %s; want 3 and %s", natsSet.Name, *natsSet.Spec.Replicas, natsSet.Spec.ServiceName, natsHeadless.Name)
		}
		pod := natsSet.Spec.Template.Spec
		c := pod.Containers[0]
		if psc := pod.SecurityContext; psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != df.natsUID {
			t.Errorf("nats: pod must run as uid %d, the nats image's user", df.natsUID)
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.Name] = vm
		}
		var configFile string
		for i, a := range c.Args {
			if a == "--config" && i+1 < len(c.Args) {
				configFile = c.Args[i+1]
			}
		}
		var conf string
		for _, v := range pod.Volumes {
			if v.ConfigMap == nil || filepath.Dir(configFile) != mounts[v.Name].MountPath {
				continue
			}
			for _, cm := range m.configMaps {
				if cm.Name == v.ConfigMap.Name {
					conf = cm.Data[filepath.Base(configFile)]
				}
			}
		}
		if conf == "" {
			t.Fatalf("nats: --config %q is not a file of a mounted ConfigMap", configFile)
		}
		if len(natsSet.Spec.VolumeClaimTemplates) != 1 {
			t.Fatal("nats: want one volume claim template, for JetStream")
		}
		data := mounts[natsSet.Spec.VolumeClaimTemplates[0].Name].MountPath
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = int(p.ContainerPort)
		}
		// The server's own configuration parser, as each pod runs it: the
		// ConfigMap's file where it is mounted, and the users' Secret where
		// it is, holding what nats-auth writes.
		root := t.TempDir()
		confPath := filepath.Join(root, configFile)
		authMount := natsAuthMount(t, pod, mounts, m)
		writeFile(t, confPath, conf)
		users := authUsers(t)
		auth, err := jobs.AuthConfig(users)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, authMount, "auth.conf"), auth)
		for i := range int(*natsSet.Spec.Replicas) {
			pod := fmt.Sprintf("%s-%d", natsSet.Name, i)
			t.Setenv("POD_NAME", pod)
			o, err := server.ProcessConfigFile(confPath)
			if err != nil {
				t.Fatalf("nats.conf: %v", err)
			}
			if len(o.Nkeys) != len(users) || o.NoAuthUser != "" {
				t.Errorf("nats.conf on %s: %d users, no-auth user %q; want exactly img2vid's %d", pod, len(o.Nkeys), o.NoAuthUser, len(users))
			}
			if o.ServerName != pod || !o.JetStream || o.StoreDir != data || o.Port != ports["client"] ||
				o.Cluster.Port != ports["cluster"] || o.HTTPPort != ports["monitor"] {
				t.Errorf("nats.conf on %s: name %q, jetstream %v in %q, ports %d/%d/%d; want %s, true, %q, %v",
					pod, o.ServerName, o.JetStream, o.StoreDir, o.Port, o.Cluster.Port, o.HTTPPort, pod, data, ports)
			}
			var routes []string
			for _, r := range o.Routes {
				routes = append(routes, r.Host)
			}
			var want []string
			for j := range int(*natsSet.Spec.Replicas) {
				want = append(want, fmt.Sprintf("%s-%d.%s.%s.svc.cluster.local:%d", natsSet.Name, j, natsHeadless.Name, ns, ports["cluster"]))
			}
			if !slices.Equal(routes, want) {
				t.Errorf("nats.conf routes %v, want %v", routes, want)
			}
			if o.LameDuckDuration <= 0 || time.Duration(*natsSet.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second <= o.LameDuckDuration {
				t.Errorf("nats: terminationGracePeriodSeconds must exceed lame_duck_duration (%s)", o.LameDuckDuration)
			}
		}
	})

	t.Run("KEDA scales the worker on the real queue", func(t *testing.T) {
		if len(m.scaled) != 1 {
			t.Fatalf("%d ScaledObjects, want 1", len(m.scaled))
		}
		so := m.scaled[0]
		if so.Spec.ScaleTargetRef.Name != roles["worker"] {
			t.Errorf("ScaledObject scales %q, not the worker Deployment %q", so.Spec.ScaleTargetRef.Name, roles["worker"])
		}
		if so.Spec.MinReplicaCount > so.Spec.MaxReplicaCount || so.Spec.MaxReplicaCount == 0 {
			t.Errorf("replica bounds %d..%d", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
		}
		if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
			t.Fatalf("triggers %+v, want one nats-jetstream", so.Spec.Triggers)
		}
		md := so.Spec.Triggers[0].Metadata
		for k := range md {
			if !slices.Contains(kedaJetStreamFields, k) {
				t.Errorf("nats-jetstream trigger: unknown metadata field %q", k)
			}
		}
		stream, consumer := queueNames(t)
		if md["stream"] != stream || md["consumer"] != consumer {
			t.Errorf("trigger on stream %q consumer %q; the job system's are %q and %q", md["stream"], md["consumer"], stream, consumer)
		}
		if md["account"] != "$G" {
			t.Errorf("account %q: img2vid uses NATS's default account $G", md["account"])
		}
		host, port, _ := net.SplitHostPort(md["natsServerMonitoringEndpoint"])
		if host != natsHeadless.Name+"."+ns+".svc.cluster.local" ||
			!slices.ContainsFunc(natsHeadless.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port && p.Name == "monitor" }) {
			t.Errorf("natsServerMonitoringEndpoint %q: want the headless Service's monitor port (KEDA asks the consumer's leader by pod name)", md["natsServerMonitoringEndpoint"])
		}
		for _, k := range []string{"lagThreshold", "activationLagThreshold"} {
			if n, err := strconv.Atoi(md[k]); err != nil || n < 0 || (k == "lagThreshold" && n == 0) {
				t.Errorf("%s=%q: want a whole number (lagThreshold above 0)", k, md[k])
			}
		}
	})
}

// The compose file's cluster profile: the same ties as the manifests, as
// far as compose has them.
func TestComposeCluster(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Profiles    []string          `json:"profiles"`
			Image       string            `json:"image"`
			Command     []string          `json:"command"`
			Environment map[string]string `json:"environment"`
			Volumes     []string          `json:"volumes"`
			DependsOn   any               `json:"depends_on"`
			Build       struct {
				Target string `json:"target"`
			} `json:"build"`
			StopGracePeriod string `json:"stop_grace_period"`
			Deploy          struct {
				Resources struct {
					Reservations struct {
						Devices []struct {
							Driver       string   `json:"driver"`
							Capabilities []string `json:"capabilities"`
						} `json:"devices"`
					} `json:"reservations"`
				} `json:"resources"`
			} `json:"deploy"`
		} `json:"services"`
	}
	// Not strict: compose has many more fields than this test reads; its
	// own parser checks the file (scripts/docker-test.sh runs
	// docker-compose config).
	if err := yaml.Unmarshal(mustRead(t, "../compose.yaml"), &compose); err != nil {
		t.Fatal(err)
	}
	settings := settingsRead(t)
	for _, profile := range []string{"cluster", "cluster-gpu"} {
		var natsServers, apis, workers, authMakers []string
		for name, s := range compose.Services {
			if len(s.Profiles) == 0 || !slices.Contains(s.Profiles, profile) {
				continue
			}
			if slices.Contains(s.Command, "nats-auth") {
				authMakers = append(authMakers, name)
				continue
			}
			for k := range s.Environment {
				if !settings[k] {
					t.Errorf("compose %s: env %s is not a setting img2vid reads", name, k)
				}
			}
			switch role := s.Environment["IMG2VID_ROLE"]; {
			case s.Build.Target == "nats":
				natsServers = append(natsServers, name)
			case role == "api":
				apis = append(apis, name)
			case role == "worker":
				workers = append(workers, name)
				grace, _ := time.ParseDuration(s.Environment["IMG2VID_GRACE"])
				stop, err := time.ParseDuration(s.StopGracePeriod)
				if err != nil || stop <= grace {
					t.Errorf("compose %s: stop_grace_period %q must exceed IMG2VID_GRACE %s", name, s.StopGracePeriod, grace)
				}
				gpu := len(s.Deploy.Resources.Reservations.Devices) > 0 &&
					slices.Contains(s.Deploy.Resources.Reservations.Devices[0].Capabilities, "gpu")
				if gpu != (profile == "cluster-gpu") {
					t.Errorf("compose %s in profile %s: GPU reservation %v", name, profile, gpu)
				}
			default:
				t.Errorf("compose %s in profile %s: IMG2VID_ROLE %q, want api or worker", name, profile, role)
			}
		}
		slices.Sort(natsServers)
		// One service makes the users into a volume before anything
		// starts; every NATS server takes its users from it, every img2vid
		// process its own role's user and the job key.
		if len(authMakers) != 1 {
			t.Fatalf("profile %s: services running nats-auth %v, want one", profile, authMakers)
		}
		maker := compose.Services[authMakers[0]]
		volume, _, _ := strings.Cut(volumeOf(maker.Volumes, maker.Command[len(maker.Command)-1]), ":")
		if volume == "" {
			t.Fatalf("compose %s: %s writes into no volume", authMakers[0], maker.Command[len(maker.Command)-1])
		}
		mountOf := func(name string) string {
			for _, v := range compose.Services[name].Volumes {
				if src, rest, _ := strings.Cut(v, ":"); src == volume {
					dst, mode, _ := strings.Cut(rest, ":")
					if mode != "ro" {
						t.Errorf("compose %s mounts %s writable", name, volume)
					}
					return dst
				}
			}
			t.Errorf("compose %s does not mount the %s volume", name, volume)
			return ""
		}
		for _, n := range natsServers {
			cmd := compose.Services[n].Command
			if i := slices.Index(cmd, "--config"); i < 0 || cmd[i+1] != mountOf(n)+"/nats/auth.conf" {
				t.Errorf("compose %s: command %v, want --config %s/nats/auth.conf (nats-auth's)", n, cmd, mountOf(n))
			}
			if !strings.Contains(fmt.Sprint(compose.Services[n].DependsOn), authMakers[0]) {
				t.Errorf("compose %s does not wait for %s", n, authMakers[0])
			}
		}
		for _, group := range [][]string{apis, workers} {
			for _, name := range group {
				e, dir := compose.Services[name].Environment, mountOf(name)+"/"+compose.Services[name].Environment["IMG2VID_ROLE"]
				if e["IMG2VID_NATS_NKEY"] != dir+"/nats.nk" || e["IMG2VID_JOB_KEY"] != dir+"/job.key" {
					t.Errorf("compose %s: IMG2VID_NATS_NKEY %q, IMG2VID_JOB_KEY %q; want %s/nats.nk and %s/job.key", name, e["IMG2VID_NATS_NKEY"], e["IMG2VID_JOB_KEY"], dir, dir)
				}
			}
		}
		if len(natsServers) != 3 || len(apis) < 2 || len(workers) != 1 {
			t.Errorf("profile %s: NATS %v, API %v, workers %v; want 3 NATS servers, 2 API replicas, one worker service", profile, natsServers, apis, workers)
		}
		var routes []string
		for _, n := range natsServers {
			routes = append(routes, "nats://"+n+":6222")
		}
		for _, n := range natsServers {
			cmd := compose.Services[n].Command
			i := slices.Index(cmd, "--routes")
			if i < 0 || cmd[i+1] != strings.Join(routes, ",") || !slices.Contains(cmd, "--jetstream") ||
				!bytes.Contains([]byte(strings.Join(cmd, " ")), []byte("--name "+n)) {
				t.Errorf("compose %s: command %v, want --jetstream, --name %s and --routes %s", n, cmd, n, strings.Join(routes, ","))
			}
		}
		for _, name := range append(apis, workers...) {
			e := compose.Services[name].Environment
			var hosts []string
			for _, u := range strings.Split(e["IMG2VID_NATS_URL"], ",") {
				parsed, err := url.Parse(u)
				if err != nil {
					t.Fatalf("compose %s: IMG2VID_NATS_URL: %v", name, err)
				}
				hosts = append(hosts, parsed.Hostname())
			}
			slices.Sort(hosts)
			if !slices.Equal(hosts, natsServers) {
				t.Errorf("compose %s: IMG2VID_NATS_URL names %v, want the NATS servers %v", name, hosts, natsServers)
			}
			if e["IMG2VID_NATS_REPLICAS"] != strconv.Itoa(len(natsServers)) {
				t.Errorf("compose %s: IMG2VID_NATS_REPLICAS=%q, want %d", name, e["IMG2VID_NATS_REPLICAS"], len(natsServers))
			}
		}
	}
}

// Every compose service, img2vid's and the NATS servers', runs with no
// Linux capabilities and cannot gain privileges; every one that serves the
// API passes IMG2VID_ALLOWED_HOSTS on from the environment.
func TestComposeServicesHardened(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			CapDrop     []string          `json:"cap_drop"`
			SecurityOpt []string          `json:"security_opt"`
			Command     []string          `json:"command"`
			Environment map[string]string `json:"environment"`
			Build       struct {
				Target string `json:"target"`
			} `json:"build"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(mustRead(t, "../compose.yaml"), &compose); err != nil {
		t.Fatal(err)
	}
	if len(compose.Services) == 0 {
		t.Fatal("compose.yaml has no services")
	}
	for name, s := range compose.Services {
		if !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("compose %s: cap_drop %q, security_opt %q; want [ALL] and no-new-privileges:true", name, s.CapDrop, s.SecurityOpt)
		}
		if s.Build.Target != "nats" && s.Environment["IMG2VID_ROLE"] != "worker" && !slices.Contains(s.Command, "nats-auth") &&
			s.Environment["IMG2VID_ALLOWED_HOSTS"] != "${IMG2VID_ALLOWED_HOSTS:-}" {
			t.Errorf("compose %s serves the API with IMG2VID_ALLOWED_HOSTS %q, want it from the environment", name, s.Environment["IMG2VID_ALLOWED_HOSTS"])
		}
	}
}

// The API Deployment answers to the names its Service gives it in the
// cluster; IP addresses, which its probes use, need no listing.
func TestKubernetesAPIAllowsItsServiceNames(t *testing.T) {
	var m manifests
	load(t, "kubernetes", &m)
	found := false
	for _, d := range m.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		if role, _ := env(c, "IMG2VID_ROLE"); role != "api" {
			continue
		}
		v, _ := env(c, "IMG2VID_ALLOWED_HOSTS")
		hosts := strings.Split(v, ",")
		for _, svc := range m.services {
			if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				continue
			}
			found = true
			for _, name := range []string{svc.Name, svc.Name + "." + svc.Namespace, svc.Name + "." + svc.Namespace + ".svc.cluster.local"} {
				if !slices.Contains(hosts, name) {
					t.Errorf("Deployment %s: IMG2VID_ALLOWED_HOSTS %q lacks %s, a name of its Service", d.Name, v, name)
				}
			}
		}
	}
	if !found {
		t.Error("no Service selects an API Deployment")
	}
}

// writeFile writes data into path, making its folder.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// authUsers are an API and a worker user with fresh keys.
func authUsers(t *testing.T) []jobs.AuthUser {
	t.Helper()
	var users []jobs.AuthUser
	for _, role := range []string{jobs.RoleAPI, jobs.RoleWorker} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, jobs.AuthUser{Role: role, NKey: pub})
	}
	return users
}

// natsAuthMount is where the NATS pods mount the users' Secret, which the
// kustomization generates from nats-auth's auth.conf.
func natsAuthMount(t *testing.T, pod corev1.PodSpec, mounts map[string]corev1.VolumeMount, m manifests) string {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		g, ok := m.secrets[v.Secret.SecretName]
		if !ok || !slices.Equal(g.Files, []string{"auth.conf=nats-auth/nats/auth.conf"}) {
			t.Fatalf("nats: Secret %q is not generated from nats-auth/nats/auth.conf (%+v)", v.Secret.SecretName, g)
		}
		return mounts[v.Name].MountPath
	}
	t.Fatal("nats: no Secret of users is mounted")
	return ""
}

// NATS is locked in the cluster: every pod goes without a service-account
// token; each img2vid role mounts its own user's Secret, made from what
// nats-auth writes, and is pointed at its seed and the job key; only
// img2vid's pods reach the client port, only NATS the route port, only
// KEDA's namespace the unauthenticated monitoring port.
func TestKubernetesNATSLocked(t *testing.T) {
	var m manifests
	load(t, "kubernetes/keda", &m)
	for name, pod := range m.workloads() {
		if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("%s: automountServiceAccountToken must be false", name)
		}
	}
	for _, d := range m.deployments {
		role := d.Spec.Template.Labels["app.kubernetes.io/component"]
		secret := "img2vid-" + role + "-nats"
		g, ok := m.secrets[secret]
		want := []string{"nats.nk=nats-auth/" + role + "/nats.nk", "job.key=nats-auth/" + role + "/job.key"}
		if !ok || g.Namespace != d.Namespace || !slices.Equal(g.Files, want) {
			t.Errorf("%s: secret generator %s is %+v, want %v in namespace %s", d.Name, secret, g, want, d.Namespace)
		}
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		var mount string
		for _, v := range pod.Volumes {
			if v.Secret != nil && v.Secret.SecretName == secret {
				for _, vm := range c.VolumeMounts {
					if vm.Name == v.Name && vm.ReadOnly {
						mount = vm.MountPath
					}
				}
				if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
					t.Errorf("%s: Secret %s readable by others (defaultMode %v)", d.Name, secret, mode)
				}
			}
		}
		if mount == "" {
			t.Errorf("%s: Secret %s is not mounted read-only", d.Name, secret)
			continue
		}
		for envName, file := range map[string]string{"IMG2VID_NATS_NKEY": "nats.nk", "IMG2VID_JOB_KEY": "job.key"} {
			if v, _ := env(c, envName); v != filepath.Join(mount, file) {
				t.Errorf("%s: %s=%q, want %s", d.Name, envName, v, filepath.Join(mount, file))
			}
		}
	}
	if len(m.policies) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1 (NATS)", len(m.policies))
	}
	p := m.policies[0].Spec
	if p.PodSelector.MatchLabels["app.kubernetes.io/name"] != "nats" || !slices.Equal(p.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy selects %v for %v, want the NATS pods' ingress", p.PodSelector, p.PolicyTypes)
	}
	from := map[string]string{}
	for _, rule := range p.Ingress {
		if len(rule.Ports) != 1 || len(rule.From) != 1 {
			t.Fatalf("NetworkPolicy rule %+v: want one port from one peer", rule)
		}
		peer := rule.From[0]
		who := ""
		switch {
		case peer.PodSelector != nil && peer.NamespaceSelector == nil:
			sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"img2vid-api", "img2vid-worker", "nats", "other"} {
				if sel.Matches(labels.Set{"app.kubernetes.io/name": name}) {
					who += name + " "
				}
			}
		case peer.NamespaceSelector != nil && peer.PodSelector == nil:
			who = "namespace " + peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
		}
		from[rule.Ports[0].Port.String()] = strings.TrimSpace(who)
	}
	want := map[string]string{"client": "img2vid-api img2vid-worker", "cluster": "nats", "monitor": "namespace keda"}
	if fmt.Sprint(from) != fmt.Sprint(want) {
		t.Errorf("NATS ports open to %v, want %v", from, want)
	}
}

// volumeOf returns the volume entry ("name:path[:mode]") mounted at path.
func volumeOf(volumes []string, path string) string {
	for _, v := range volumes {
		if _, rest, ok := strings.Cut(v, ":"); ok && strings.Split(rest, ":")[0] == path {
			return v
		}
	}
	return ""
}
