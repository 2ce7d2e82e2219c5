package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/img2vid/img2vid/internal/testenv"
	"github.com/img2vid/img2vid/internal/testimage"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

// newTestCA makes a CA and writes its certificate into dir.
func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// serverCert makes a certificate for 127.0.0.1 signed by the CA, and
// writes it and its key into dir.
func (ca *testCA) serverCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// natsAccounts is an operator with a system account and an account with
// JetStream, as nsc would make them, for a server in operator mode.
type natsAccounts struct {
	operatorJWT            string
	sysPub, sysJWT         string
	accountPub, accountJWT string
	account                nkeys.KeyPair // signs the account's users
}

func newNATSAccounts(t *testing.T) *natsAccounts {
	t.Helper()
	must := func(kp nkeys.KeyPair, err error) nkeys.KeyPair {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	op := must(nkeys.CreateOperator())
	opPub, _ := op.PublicKey()
	sys := must(nkeys.CreateAccount())
	a := &natsAccounts{account: must(nkeys.CreateAccount())}
	var err error
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "img2vid-test"
	if a.operatorJWT, err = oc.Encode(op); err != nil {
		t.Fatal(err)
	}
	a.sysPub, _ = sys.PublicKey()
	sc := jwt.NewAccountClaims(a.sysPub)
	sc.Name = "SYS"
	if a.sysJWT, err = sc.Encode(op); err != nil {
		t.Fatal(err)
	}
	a.accountPub, _ = a.account.PublicKey()
	ac := jwt.NewAccountClaims(a.accountPub)
	ac.Name = "img2vid"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	if a.accountJWT, err = ac.Encode(op); err != nil {
		t.Fatal(err)
	}
	return a
}

// userCreds makes a user of the account signed by signer (the account's
// key, or another one to make credentials the server refuses) and writes
// its credentials file.
func userCreds(t *testing.T, file, accountPub string, signer nkeys.KeyPair) string {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	userPub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accountPub
	token, err := uc.Encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// A NATS server that takes only TLS clients with a user's credentials
// (operator mode, JWTs and nkeys made here): serve connects to it with
// --nats tls://..., --nats-ca and --nats-creds and runs a job, and doctor
// reaches it the same way. A CA that did not sign the server's
// certificate, or credentials the server does not trust, stop serve at
// start with an error naming the URL.
func TestServeNATSWithTLSAndCredentials(t *testing.T) {
	testenv.NeedFFmpeg(t)
	bin := natsServer(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	certFile, keyFile := ca.serverCert(t, dir)
	acc := newNATSAccounts(t)
	port := freePort(t)
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
tls { cert_file: %q, key_file: %q }
operator: %q
system_account: %q
resolver: MEMORY
resolver_preload: { %s: %q, %s: %q }
`, port, filepath.Join(dir, "js"), certFile, keyFile, acc.operatorJWT, acc.sysPub,
		acc.sysPub, acc.sysJWT, acc.accountPub, acc.accountJWT), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(bin, "-c", conf)
	if out, err := exec.Command(bin, "-c", conf, "-t").CombinedOutput(); err != nil {
		t.Fatalf("nats-server refuses its configuration: %v\n%s", err, out)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitPort(t, port)
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	creds := userCreds(t, filepath.Join(dir, "user.creds"), acc.accountPub, acc.account)

	_, base := startServe(t, "--nats", url, "--nats-ca", ca.file, "--nats-creds", creds)
	id := postImages(t, base, []image.Image{testimage.Solid(64, 48, color.NRGBA{0, 160, 0, 255}), testimage.Solid(64, 48, color.NRGBA{0, 0, 160, 255})}, nil)
	var j restartJob
	waitUntil(t, "the job to end", time.Minute, func() bool { j, _ = getJob(t, base, id); return j.Status == "done" || j.Status == "failed" })
	if j.Status != "done" {
		t.Fatalf("job over TLS with credentials ended %s (%+v)", j.Status, j.Error)
	}
	checkVideo(t, base+j.Video, 64, 48, 2)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doctor := exec.CommandContext(ctx, exe, "doctor", "--nats", url, "--nats-ca", ca.file, "--nats-creds", creds, "--device", "cpu")
	doctor.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
	out, _ := doctor.CombinedOutput() // the verdict depends on this machine's models
	if !strings.Contains(string(out), "stream:            IMG2VID_JOBS R1") {
		t.Errorf("doctor over TLS with credentials does not report the stream:\n%s", out)
	}

	// A CA that did not sign the server's certificate; credentials signed
	// by an account key the server does not know; none at all.
	other := newTestCA(t, t.TempDir(), "other-ca")
	stranger, _ := nkeys.CreateAccount()
	forged := userCreds(t, filepath.Join(dir, "forged.creds"), acc.accountPub, stranger)
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"wrong CA", []string{"--nats-ca", other.file, "--nats-creds", creds}, "certificate"},
		{"untrusted credentials", []string{"--nats-ca", ca.file, "--nats-creds", forged}, "uthorization"},
		{"no credentials", []string{"--nats-ca", ca.file}, "uthorization"},
	} {
		cmd := exec.CommandContext(ctx, exe, append([]string{"serve", "--port", "0", "--work-dir", t.TempDir(), "--device", "cpu",
			"--nats", url, "--role", "worker"}, tc.args...)...)
		cmd.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), "connecting to NATS at "+url) ||
			!strings.Contains(string(out), tc.says) {
			t.Errorf("serve with %s: %v\n%s\nwant a non-zero exit naming %s and saying %q", tc.name, err, out, url, tc.says)
		}
	}
}

// What img2vid nats-auth writes locks a real nats-server as a cluster
// deployment does (TLS, and its users by role): an API replica and a
// worker, each with its own role's seed and the shared job key, run a job
// end to end with no insecurity reported; a worker's seed cannot serve as
// an API replica's; nats-auth overwrites no credentials it made before.
func TestServeWithNATSAuthUsers(t *testing.T) {
	testenv.NeedFFmpeg(t)
	bin := natsServer(t)
	dir := t.TempDir()
	auth := filepath.Join(dir, "auth")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	nauth := func(flags ...string) ([]byte, error) {
		cmd := exec.Command(exe, append(append([]string{"nats-auth"}, flags...), auth)...)
		cmd.Env = append(os.Environ(), "IMG2VID_TEST_MAIN=1")
		return cmd.CombinedOutput()
	}
	if out, err := nauth(); err != nil {
		t.Fatalf("nats-auth: %v\n%s", err, out)
	}
	if out, err := nauth(); err == nil || !strings.Contains(string(out), "exists already") {
		t.Errorf("nats-auth over its own credentials: %v\n%s\nwant it refused", err, out)
	}
	if out, err := nauth("--keep"); err != nil || !strings.Contains(string(out), "kept") {
		t.Errorf("nats-auth --keep over its own credentials: %v\n%s\nwant them kept", err, out)
	}
	for _, f := range []string{"api/nats.nk", "worker/nats.nk", "api/job.key", "worker/job.key"} {
		if fi, err := os.Stat(filepath.Join(auth, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a file only its owner reads", f, fi, err)
		}
	}
	ca := newTestCA(t, dir, "ca")
	certFile, keyFile := ca.serverCert(t, dir)
	port := freePort(t)
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
tls { cert_file: %q, key_file: %q }
include "auth/nats/auth.conf"
`, port, filepath.Join(dir, "js"), certFile, keyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", conf, "-t").CombinedOutput(); err != nil {
		t.Fatalf("nats-server refuses the configuration nats-auth made: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "-c", conf)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitPort(t, port)
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	as := func(role string) []string {
		return []string{"--nats", url, "--nats-ca", ca.file, "--role", role,
			"--nats-nkey", filepath.Join(auth, role, "nats.nk"), "--job-key", filepath.Join(auth, role, "job.key")}
	}
	_, base := startServe(t, as("api")...)
	startServe(t, as("worker")...)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "warnings") {
		t.Errorf("/readyz of an API replica with its user and the job key reports %s", body)
	}
	id := postImages(t, base, []image.Image{testimage.Solid(64, 48, color.NRGBA{160, 0, 0, 255}), testimage.Solid(64, 48, color.NRGBA{0, 0, 160, 255})}, nil)
	var j restartJob
	waitUntil(t, "the job to end", time.Minute, func() bool { j, _ = getJob(t, base, id); return j.Status == "done" || j.Status == "failed" })
	if j.Status != "done" {
		t.Fatalf("job on NATS locked by nats-auth ended %s (%+v)", j.Status, j.Error)
	}
	checkVideo(t, base+j.Video, 64, 48, 2)

	// The worker's seed as an API replica's: it may not queue jobs, so a
	// job posted to it never reaches the queue.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := as("api")
	args[len(args)-3] = filepath.Join(auth, "worker", "nats.nk")
	_, wrong := startServe(t, args...)
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	w, _ := mw.CreateFormFile("files", "a.png")
	w.Write(testimage.PNG(t, testimage.Solid(64, 48, color.NRGBA{0, 160, 0, 255})))
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, wrong+"/api/jobs", &form)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		t.Errorf("an API replica with a worker's user queued a job: %s", body)
	}
}
