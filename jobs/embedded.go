package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside this process,
// with no network listener: the single-machine default. Its files live in
// one folder, so that queued jobs survive a restart.
type Embedded struct {
	srv  *server.Server
	lock *os.File // held while the server runs: one process per store
	// Conn is an in-process connection to it.
	Conn *nats.Conn
}

// StartEmbedded starts the server with JetStream files under dir and
// connects to it.
func StartEmbedded(dir string) (*Embedded, error) {
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	e, err := startEmbedded(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	e.lock = lock
	return e, nil
}

// lockStore takes the store's lock file, so that a second process on the
// same folder is refused instead of corrupting the first one's files. The
// kernel drops the lock when the process ends, however it ends.
func lockStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the job store %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock of the job store %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the job store %s is in use by another img2vid process; give each its own --work-dir", dir)
		}
		return nil, fmt.Errorf("locking the job store %s: %w", dir, err)
	}
	return f, nil
}

// startEmbedded starts the server on a locked store.
func startEmbedded(dir string) (*Embedded, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "img2vid",
		JetStream:  true,
		StoreDir:   dir,
		DontListen: true,
		NoSigs:     true, // the program's own signal handling stays in charge
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server (store %s) did not start within 30s", dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("img2vid"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("connecting to the embedded NATS server: %w", err)
	}
	return &Embedded{srv: srv, Conn: nc}, nil
}

// Close closes the connection and stops the server, which flushes its
// files.
func (e *Embedded) Close() {
	e.Conn.Close()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.Close()
}
