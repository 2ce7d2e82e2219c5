package jobs

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect connects to an external NATS server or cluster: urls is a comma
// separated list (nats://, tls:// for TLS), creds an optional credentials
// file. A server that cannot be reached at start is an error naming it;
// once connected, a lost connection is retried without end, and Connected
// reports it meanwhile.
func Connect(urls, creds string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("img2vid"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed on purpose
				log.Warn("lost the connection to NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", redact(nc.ConnectedUrl()))
		}),
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", RedactURLs(urls), err)
	}
	return nc, nil
}

// RedactURLs is a comma separated list of server URLs with any password
// hidden, for messages and logs.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		parts[i] = redact(strings.TrimSpace(u))
	}
	return strings.Join(parts, ",")
}

// redact hides the password of one URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
