// Package deploy holds img2vid's deployment files: the Kubernetes manifests
// under kubernetes/ (a kustomization; kubernetes/keda adds the autoscaler).
// Its tests decode every manifest strictly into the Kubernetes API types and
// check what ties them to each other and to img2vid itself (the settings
// the binary reads, the paths it serves, the names of its NATS stream and
// consumer), and do the same for the repository's compose.yaml. No code
// here is built into img2vid.
package deploy
