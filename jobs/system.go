package jobs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream assets. Every replica and worker of one
// deployment uses the same ones; they are created at their final replica
// count, and the work-queue stream is never sourced or mirrored (a work
// queue has one copy of each job, acknowledged once).
const (
	queueStream   = "IMG2VID_JOBS"
	queueSubject  = "img2vid.jobs"
	consumerName  = "workers"
	stateBucket   = "img2vid-jobs"
	uploadsBucket = "img2vid-uploads"
	videosBucket  = "img2vid-videos"
)

// Config sets up the job system. Zero values take the defaults shown.
type Config struct {
	// Replicas is the replica count of the stream and buckets: 1 on one
	// server, 3 on a three-node cluster (default 1).
	Replicas int
	// TTL is how long a finished job and its video are kept (default 1h),
	// and how long a job's images may wait in the queue.
	TTL time.Duration
	// Queue is how many jobs may wait for a worker (default 8); beyond it
	// Submit refuses with a busy error, whichever replica asks.
	Queue int
	// Attempts is how many times a job is started before it fails because
	// its worker never finished it (default 3).
	Attempts int
	// AckWait is how long a worker that stopped sending heartbeats keeps
	// a job before it goes to another (default 10s); later redeliveries
	// wait twice and four times as long.
	AckWait time.Duration
	// Key signs the job messages this process publishes and is what a
	// worker checks them against: a message not signed with it is refused,
	// so a NATS user without the key cannot queue a job. Optional (nil:
	// nothing signed or checked, as on the embedded server, which no other
	// process reaches); every process of a deployment shares one.
	Key []byte
	// Logger receives the system's logs. Optional.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Key) > 0 && len(c.Key) < MinKeyBytes {
		return c, fmt.Errorf("jobs config: the job key has %d bytes; it needs at least %d", len(c.Key), MinKeyBytes)
	}
	if c.Replicas < 0 || c.TTL < 0 || c.Queue < 0 || c.Attempts < 0 || c.AckWait < 0 {
		return c, fmt.Errorf("jobs config: replicas, TTL, queue, attempts and ack wait must not be negative")
	}
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.TTL = cmp.Or(c.TTL, time.Hour)
	c.Queue = cmp.Or(c.Queue, 8)
	c.Attempts = cmp.Or(c.Attempts, 3)
	c.AckWait = cmp.Or(c.AckWait, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// backoff is how long each delivery of a job may go without a heartbeat
// before JetStream hands it to another worker: growing, so that a job
// that kills its workers does not take them all down at once.
func (c Config) backoff() []time.Duration {
	b := make([]time.Duration, c.Attempts)
	for i := range b {
		b[i] = c.AckWait << min(i, 2)
	}
	return b
}

// consumer is the configuration of the durable consumer every worker
// shares.
func (c Config) consumer() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "img2vid workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		BackOff:       c.backoff(),
		MaxDeliver:    c.maxDeliver(),
		FilterSubject: queueSubject,
		Replicas:      c.Replicas,
	}
}

// maxDeliver bounds the deliveries of one job. A job's attempts are
// counted in its state; deliveries also count hand-backs from workers
// that shut down, so they get as many again, and the last delivery only
// records the failure.
func (c Config) maxDeliver() int { return 2*c.Attempts + 1 }

// System is one process's handle on the job system: the stream, the
// consumer, the buckets and a live view of every job's state.
type System struct {
	cfg      Config
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	consumer jetstream.Consumer
	states   jetstream.KeyValue
	// admission holds the places uploads and jobs take against the
	// admission limits (Admit).
	admission jetstream.KeyValue
	uploads   jetstream.ObjectStore
	videos    jetstream.ObjectStore
	// The streams under the object stores, to remove delete markers.
	uploadsStream jetstream.Stream
	videosStream  jetstream.Stream
	board         *board
	stop          context.CancelFunc
	done          chan struct{}
}

// Open creates (or updates) the stream, consumer and buckets on nc's
// JetStream, starts watching job states and reaping expired jobs.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*System, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &System{cfg: cfg, log: cfg.Logger, nc: nc, js: js, done: make(chan struct{})}
	s.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        queueStream,
		Description: "img2vid jobs waiting for a worker or running on one",
		Subjects:    []string{queueSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", queueStream, err)
	}
	s.consumer, err = js.CreateOrUpdateConsumer(ctx, queueStream, cfg.consumer())
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", consumerName, err)
	}
	if err := s.createBuckets(ctx); err != nil {
		return nil, err
	}
	// The object stores' streams are named by the object store
	// specification (ADR-20): OBJ_ and the bucket.
	if s.uploadsStream, err = js.Stream(ctx, "OBJ_"+uploadsBucket); err != nil {
		return nil, fmt.Errorf("opening the stream of bucket %s: %w", uploadsBucket, err)
	}
	if s.videosStream, err = js.Stream(ctx, "OBJ_"+videosBucket); err != nil {
		return nil, fmt.Errorf("opening the stream of bucket %s: %w", videosBucket, err)
	}
	wctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.board, err = watch(ctx, wctx, s.states, nc, s.log)
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		defer close(s.done)
		s.reap(wctx)
	}()
	return s, nil
}

// createBuckets creates (or updates) the key-value buckets of job states
// and admission places and the object stores of uploads and videos.
func (s *System) createBuckets(ctx context.Context) error {
	var err error
	s.states, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      stateBucket,
		Description: "img2vid job status and progress",
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", stateBucket, err)
	}
	s.admission, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      admissionBucket,
		Description: "img2vid uploads' and jobs' places against the admission limits",
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		// A client's list that nobody rewrote for this long holds only
		// places of jobs that have ended.
		TTL:            s.cfg.TTL + holdFor,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", admissionBucket, err)
	}
	// The buckets have no byte cap: JetStream reserves a stream's cap
	// against the server's storage when the stream is made, so capping
	// both at the disk budget refused to start on a disk smaller than
	// twice the budget (a tmpfs work folder, a small volume). The budget
	// holds at admission instead, counted from the buckets' real size.
	s.uploads, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      uploadsBucket,
		Description: "img2vid uploaded images, deleted when their job ends",
		// A job deletes its images when it ends; one that waits in the
		// queue longer than the TTL fails, saying so.
		TTL:      s.cfg.TTL,
		Storage:  jetstream.FileStorage,
		Replicas: s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", uploadsBucket, err)
	}
	s.videos, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      videosBucket,
		Description: "img2vid finished videos, kept for the job TTL",
		TTL:         s.cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", videosBucket, err)
	}
	return nil
}

// reclaim puts the jobs that the consumer counts as taken by a worker back
// in the queue at once, by making the consumer again (a work-queue stream
// keeps every job not yet acknowledged, and a new consumer delivers them
// from the start); otherwise each would wait for its ack wait to pass.
// Only for a store that this process alone holds (the embedded server,
// behind its lock), where a job taken can only be one whose worker died
// with the previous process: on a shared cluster another worker may be
// running it. A job's attempts are counted in its state, so they carry
// over.
func (s *System) reclaim(ctx context.Context) error {
	info, err := s.consumer.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading consumer %s: %w", consumerName, err)
	}
	if info.NumAckPending == 0 {
		return nil
	}
	s.log.Info("jobs taken by the worker of the previous run go back to the queue", "jobs", info.NumAckPending)
	if err := s.js.DeleteConsumer(ctx, queueStream, consumerName); err != nil {
		return fmt.Errorf("resetting consumer %s: %w", consumerName, err)
	}
	if s.consumer, err = s.js.CreateOrUpdateConsumer(ctx, queueStream, s.cfg.consumer()); err != nil {
		return fmt.Errorf("creating consumer %s: %w", consumerName, err)
	}
	return nil
}

// Close stops watching and reaping. It does not close the connection.
func (s *System) Close() {
	s.stop()
	<-s.done
	s.board.wait()
}

// Connected reports whether the connection to NATS is up, for readiness.
func (s *System) Connected() error {
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("the connection to NATS is %s", st)
	}
	return nil
}
