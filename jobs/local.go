package jobs

import (
	"context"
	"path/filepath"
)

// Local is the whole job system in one process, the single-machine
// default: an embedded NATS server with its files under one folder, the
// system on it, and a worker.
type Local struct {
	*System
	Worker   *Worker
	embedded *Embedded
}

// StartLocal starts a Local with its JetStream files in dir/jetstream and
// its worker's folder at dir/worker (wcfg.Dir, when set, wins). ctx bounds
// the start.
func StartLocal(ctx context.Context, dir string, cfg Config, wcfg WorkerConfig) (*Local, error) {
	emb, err := StartEmbedded(filepath.Join(dir, "jetstream"))
	if err != nil {
		return nil, err
	}
	sys, err := Open(ctx, emb.Conn, cfg)
	if err != nil {
		emb.Close()
		return nil, err
	}
	// The store's lock proves no other process holds these jobs: those
	// still taken were the previous run's, and run again now.
	if err := sys.reclaim(ctx); err != nil {
		sys.Close()
		emb.Close()
		return nil, err
	}
	if wcfg.Dir == "" {
		wcfg.Dir = filepath.Join(dir, "worker")
	}
	w, err := sys.StartWorker(wcfg)
	if err != nil {
		sys.Close()
		emb.Close()
		return nil, err
	}
	return &Local{System: sys, Worker: w, embedded: emb}, nil
}

// Stop stops the worker, handing back what still runs when ctx ends
// (Worker.Stop's error then), and closes the system and the server. Jobs
// still queued stay in the store for the next start.
func (l *Local) Stop(ctx context.Context) error {
	err := l.Worker.Stop(ctx)
	l.System.Close()
	l.embedded.Close()
	return err
}
