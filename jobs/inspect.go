package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Report is the state of the job system on a NATS server, for doctor.
type Report struct {
	URL, Server, Cluster, Domain string
	// Assets lists the stream, the buckets and the consumer, in that order.
	Assets []Asset
}

// Asset is one stream, bucket or consumer of the job system.
type Asset struct {
	Kind, Name string
	Missing    bool // not created yet: no serve has run against this NATS
	Replicas   int
	Messages   uint64
	Bytes      uint64
	// For the consumer: jobs waiting, taken by a worker, delivered again.
	Waiting, InProgress, Redelivered int
}

// Inspect reads the job system's state from the NATS server nc is
// connected to, creating nothing.
func Inspect(ctx context.Context, nc *nats.Conn) (Report, error) {
	r := Report{URL: redact(nc.ConnectedUrl()), Server: nc.ConnectedServerName(), Cluster: nc.ConnectedClusterName()}
	js, err := jetstream.New(nc)
	if err != nil {
		return r, fmt.Errorf("jetstream: %w", err)
	}
	acct, err := js.AccountInfo(ctx)
	if err != nil {
		return r, fmt.Errorf("JetStream on %s: %w", r.URL, err)
	}
	r.Domain = acct.Domain
	for _, s := range []struct{ kind, name string }{
		{"stream", queueStream}, {"bucket", "KV_" + stateBucket}, {"bucket", "OBJ_" + uploadsBucket}, {"bucket", "OBJ_" + videosBucket},
	} {
		a := Asset{Kind: s.kind, Name: s.name}
		st, err := js.Stream(ctx, s.name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			a.Missing = true
		case err != nil:
			return r, fmt.Errorf("stream %s: %w", s.name, err)
		default:
			info := st.CachedInfo()
			a.Replicas, a.Messages, a.Bytes = info.Config.Replicas, info.State.Msgs, info.State.Bytes
		}
		r.Assets = append(r.Assets, a)
	}
	a := Asset{Kind: "consumer", Name: queueStream + "/" + consumerName}
	c, err := js.Consumer(ctx, queueStream, consumerName)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		a.Missing = true
	case err != nil:
		return r, fmt.Errorf("consumer %s: %w", consumerName, err)
	default:
		info := c.CachedInfo()
		a.Replicas, a.Waiting, a.InProgress, a.Redelivered = info.Config.Replicas, int(info.NumPending), info.NumAckPending, info.NumRedelivered
	}
	r.Assets = append(r.Assets, a)
	return r, nil
}

// Write prints the report, one line per asset.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%-18s %s (server %s, cluster %q, domain %q)\n", "nats:", r.URL, r.Server, r.Cluster, r.Domain)
	for _, a := range r.Assets {
		label := a.Kind + ":"
		switch {
		case a.Missing:
			fmt.Fprintf(w, "%-18s %s not created yet (serve creates it)\n", label, a.Name)
		case a.Kind == "consumer":
			fmt.Fprintf(w, "%-18s %s R%d, %d waiting, %d in progress, %d redelivered\n", label, a.Name, a.Replicas, a.Waiting, a.InProgress, a.Redelivered)
		default:
			fmt.Fprintf(w, "%-18s %s R%d, %d messages, %d bytes\n", label, a.Name, a.Replicas, a.Messages, a.Bytes)
		}
	}
}
