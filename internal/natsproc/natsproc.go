// Package natsproc runs real nats-server processes on loopback, built from
// the nats-server module this one requires (nothing is downloaded), for
// the tests and benchmarks that need a NATS server or cluster of their own.
package natsproc

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"time"
)

// Build builds nats-server into dir and returns its path. It runs go
// build, so it must run inside this module's checkout.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nats-server: %v\n%s", err, out)
	}
	return bin, nil
}

// FreePort returns a loopback port nothing listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitPort waits until something takes connections on a loopback port,
// limit at most.
func WaitPort(port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing takes connections on port %d after %s: %w", port, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
